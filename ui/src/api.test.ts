import { describe, expect, it } from "vitest";
import { ApiError, HttpBackend, backupQueryString, callId, connect, learnerStateFileName, nextDelay } from "./api";
import { askFirst, BUCKETS, MARKS, PAGE, POINTS } from "./firstload";
import { CHARTS } from "./model/engines";

interface Call {
  url: string;
  init?: RequestInit;
}

function fakeFetch(status: number, body: unknown, calls: Call[]) {
  return async (url: string, init?: RequestInit) => {
    calls.push({ url, init });
    return new Response(typeof body === "string" ? body : JSON.stringify(body), { status });
  };
}

describe("answers asked ahead", () => {
  it("hands each answer to the first identical call, once, and asks again after", async () => {
    const calls: Call[] = [];
    const api = new HttpBackend("", "x", fakeFetch(200, { items: [], next: null, total: 0 }, calls));
    api.askAhead((b) => {
      void b.timeline({ kinds: [], from_ms: null, to_ms: null, buckets: 300, marks: 1500 });
      void b.status();
    });
    expect(calls.length).toBe(2);
    // The same request built in another order is the same call: no new request.
    await api.timeline({ marks: 1500, buckets: 300, to_ms: null, from_ms: null, kinds: [] });
    expect(calls.length).toBe(2);
    // Handed out once: the next identical call asks.
    await api.timeline({ kinds: [], from_ms: null, to_ms: null, buckets: 300, marks: 1500 });
    expect(calls.length).toBe(3);
    // Another request is another call.
    await api.timeline({ kinds: ["manual"], from_ms: null, to_ms: null, buckets: 300, marks: 1500 });
    expect(calls.length).toBe(4);
    // Dropped answers are asked again.
    api.forgetAhead();
    await api.status();
    expect(calls.length).toBe(5);
  });

  it("gives a failure asked ahead to its caller, and to nobody before", async () => {
    // An unhandled rejection in between would fail this run (vitest reports them).
    const api = new HttpBackend("", "x", fakeFetch(503, { code: "not_started", message: "choose first" }, []));
    api.askAhead((b) => void b.status());
    await new Promise((ok) => setTimeout(ok, 20));
    const err = (await api.status().catch((e: unknown) => e)) as ApiError;
    expect(err.code).toBe("not_started");
  });

  it("asks the first view's calls exactly as the page asks them", async () => {
    const calls: Call[] = [];
    const api = new HttpBackend("", "x", fakeFetch(200, {}, calls));
    askFirst(api);
    const urls = calls.map((c) => c.url);
    expect(urls).toContain(`/api/timeline?buckets=${BUCKETS}&marks=${MARKS}`);
    expect(urls).toContain(`/api/backups?limit=${PAGE}`);
    for (const c of CHARTS) expect(urls).toContain(`/api/metrics/series?engine=${c.engine}&key=${c.key}&points=${POINTS}`);
    expect(urls.length).toBe(4 + CHARTS.length);
    // The list's first page as loadList asks it (filters from an empty form).
    expect(callId("list_backups", null, { kinds: [], engine: null, limit: PAGE, offset: 0, after: null, text: "", pinned: false })).toBe(
      callId("list_backups", null, { pinned: false, text: "", after: null, offset: 0, limit: PAGE, engine: null, kinds: [] }),
    );
  });
});

describe("HttpBackend", () => {
  it("sends the token on every request and parses JSON", async () => {
    const calls: Call[] = [];
    const api = new HttpBackend("http://127.0.0.1:9", "t0k", fakeFetch(200, { items: [], next: null, total: 0 }, calls));
    const page = await api.listBackups({ kinds: ["manual", "breakthrough"], engine: "zap", limit: 20, after: { created_at_ms: 5, id: 7 } });
    expect(page.total).toBe(0);
    expect(calls[0]!.url).toBe(
      "http://127.0.0.1:9/api/backups?kind=manual%2Cbreakthrough&engine=zap&limit=20&after_created_at_ms=5&after_id=7",
    );
    expect((calls[0]!.init!.headers as Record<string, string>)["Authorization"]).toBe("Bearer t0k");
  });

  it("turns {code, message} errors into ApiError with the code", async () => {
    const api = new HttpBackend("", "x", fakeFetch(409, { code: "protected", message: "backup 1 is protected: pinned" }, []));
    const err = await api.delete_backup(1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe("protected");
    expect((err as ApiError).message).toContain("pinned");
  });

  it("keeps the HTTP status when the body is not JSON", async () => {
    const api = new HttpBackend("", "x", fakeFetch(502, "bad gateway", []));
    const err = (await api.status().catch((e: unknown) => e)) as ApiError;
    expect(err.code).toBe("http_502");
  });

  it("reports an unreachable server as such", async () => {
    const api = new HttpBackend("", "x", async () => {
      throw new TypeError("connection refused");
    });
    const err = (await api.verify().catch((e: unknown) => e)) as ApiError;
    expect(err.code).toBe("unreachable");
  });

  it("posts restore with an optional engine and import as raw bytes", async () => {
    const calls: Call[] = [];
    const api = new HttpBackend("", "x", fakeFetch(200, { id: 1 }, calls));
    await api.restore(3, "zap");
    await api.restore(4);
    await api.importSnapshot(new Blob(["abc"]));
    expect(calls[0]!.init!.body).toBe('{"engine":"zap"}');
    expect(calls[1]!.init!.body).toBe("{}");
    expect(calls[2]!.url).toBe("/api/import");
    expect((calls[2]!.init!.headers as Record<string, string>)["Content-Type"]).toBeUndefined();
  });
});

describe("connect", () => {
  it("uses HTTP with the URL's token in a browser and Tauri inside the app", () => {
    const browser = connect({ location: { origin: "http://127.0.0.1:5", search: "?token=abc" } });
    expect(browser.kind).toBe("http");
    const app = connect({ location: { origin: "tauri://localhost", search: "" }, __TAURI_INTERNALS__: {} });
    expect(app.kind).toBe("tauri");
  });
  it("builds default query strings", () => {
    expect(backupQueryString({})).toBe("limit=50");
  });
});

describe("TauriBackend", () => {
  it("sends imports as raw bytes and reads exports as raw bytes", async () => {
    const { vi } = await import("vitest");
    const calls: { cmd: string; args: unknown }[] = [];
    vi.doMock("@tauri-apps/api/core", () => ({
      invoke: async (cmd: string, args: unknown) => {
        calls.push({ cmd, args });
        if (cmd === "export_backup") return new Uint8Array([69, 78]).buffer;
        if (cmd === "get_backup") throw { code: "not_found", message: "backup 9 not found" };
        return { id: 3 };
      },
    }));
    const { TauriBackend: Fresh } = await import("./api");
    const api = new Fresh();
    await api.importSnapshot(new Blob([new Uint8Array([1, 2, 3])]));
    expect(calls[0]!.cmd).toBe("import_snapshot");
    expect(calls[0]!.args).toBeInstanceOf(Uint8Array);
    expect(Array.from(calls[0]!.args as Uint8Array)).toEqual([1, 2, 3]);
    const blob = await api.exportBackup(3, "binary");
    expect(calls[1]!.args).toEqual({ id: 3, request: { format: "binary" } });
    expect(new Uint8Array(await blob.arrayBuffer())).toEqual(new Uint8Array([69, 78]));
    const err = (await api.get_backup(9).catch((e: unknown) => e)) as ApiError;
    expect(err).toBeInstanceOf(ApiError);
    expect(err.code).toBe("not_found");
    vi.doUnmock("@tauri-apps/api/core");
  });
});

describe("reconnection backoff", () => {
  it("doubles each time and stops growing at thirty seconds", () => {
    const waits: number[] = [];
    let d = 0;
    for (let i = 0; i < 9; i++) {
      d = nextDelay(d);
      waits.push(d);
    }
    expect(waits).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000]);
  });
});

describe("learnerStateFileName", () => {
  it("names the learner and the backup, with anything unsafe for a file name replaced", () => {
    expect(learnerStateFileName("frozenlake-q", 12)).toBe("frozenlake-q-backup-12.state");
    expect(learnerStateFileName("a/b\\c:d e", 3)).toBe("a_b_c_d_e-backup-3.state");
    expect(learnerStateFileName("..", 1)).toBe("..-backup-1.state");
  });
});
