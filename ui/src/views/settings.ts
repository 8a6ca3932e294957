/** The settings dialog, built from the settings descriptor the core
 * generates (`SETTING_FIELDS`): one input per field with its range and help.
 * A value the server refuses keeps the dialog open with what was typed. */

import { $, el } from "../dom";
import { SETTING_FIELDS, type SettingField } from "../generated/api";
import { attempt, explain, toast } from "../notify";
import { valueAt, withValue } from "../model/settings";
import { api } from "../backend";

function input(f: SettingField) {
  const i = el("input", { name: f.key, type: "number", min: String(f.min), max: String(f.max), step: f.kind === "integer" ? "1" : "any", required: "" });
  i.title = f.help;
  return i;
}

/** Builds the form's fieldsets once. */
export function buildSettingsForm() {
  const groups = new Map<string, HTMLFieldSetElement>();
  for (const f of SETTING_FIELDS) {
    let set = groups.get(f.group);
    if (!set) {
      set = el("fieldset");
      set.append(el("legend", {}, f.group));
      groups.set(f.group, set);
    }
    const label = el("label", {}, f.label);
    label.append(input(f));
    set.append(label);
  }
  $("settings-fields").replaceChildren(...groups.values());
}

export async function openSettings() {
  const s = await attempt("Loading settings", () => api.settings());
  if (!s) return;
  const form = $<HTMLFormElement>("settings-form");
  const field = (key: string) => form.elements.namedItem(key) as HTMLInputElement;
  for (const f of SETTING_FIELDS) field(f.key).value = String(valueAt(s, f.key));
  const error = $("settings-error");
  error.hidden = true;
  const d = $<HTMLDialogElement>("settings");
  const save = async (ev: SubmitEvent) => {
    if ((ev.submitter as HTMLButtonElement | null)?.value !== "save") return;
    ev.preventDefault();
    const next = SETTING_FIELDS.reduce((acc, f) => withValue(acc, f.key, Number(field(f.key).value)), s);
    try {
      await api.patch_settings(next);
      d.close("saved");
      toast("Settings saved and applied.");
    } catch (e) {
      error.textContent = `Not saved. ${explain(e)}`;
      error.hidden = false;
    }
  };
  form.addEventListener("submit", save);
  d.addEventListener("close", () => form.removeEventListener("submit", save), { once: true });
  d.returnValue = "";
  d.showModal();
}
