import { formatTimestamp } from "./format";

// Placeholder shell until the dashboard lands (issue 5): shows that the UI
// loads inside the Tauri window and in a browser.
const facts = document.getElementById("facts");
if (facts) {
  const rows: Array<[string, string]> = [
    ["Opened", formatTimestamp(Date.now())],
    ["Shell", "__TAURI_INTERNALS__" in window ? "desktop" : "browser"],
  ];
  for (const [k, v] of rows) {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = v;
    facts.append(dt, dd);
  }
}
