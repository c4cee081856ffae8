/**
 * Load workload (issue 7, part 5), shared by test/reliability/load.test.ts, s3.load.test.ts and
 * `npm run soak` (bench/soak.ts): N deep agents — deepagents' own `createDeepAgent` driven by a
 * scripted `fakeModel` — run at the same time on ONE workspace, each making M file-tool calls.
 *
 * Every agent's script is generated from a seed and is a realistic mix, issued as model turns of
 * 1–4 parallel tool calls (as real models batch them):
 *
 * - write_file: new files of its own under /agents/aNN/ (and overwrites of its own files);
 * - edit_file: one unique token per call, in its own files and in the 4 files under /shared/
 *   that every agent edits (each shared edit replaces a token no other edit touches, so a lost
 *   update leaves a token in its original form and is detected);
 * - read_file, ls, glob, grep over its own files and the shared files.
 *
 * A turn is either all mutations (on distinct own files) or all queries, so every query has an
 * exact expected answer — the state after the agent's earlier turns — and is checked: a read
 * must show every line, ls/glob/grep of the agent's own directory must list exactly its files
 * (with their byte sizes for ls), and the shared files must show every shared edit the agent has
 * made so far. Only other agents' concurrent shared edits are unknown at query time.
 *
 * At the end: every tool message is checked for errors, every own file is compared with its
 * expected final content (and no other file exists there), and every shared file with its
 * expected content (every token replaced). Latency per tool is measured by a LangChain callback
 * handler passed in the invoke config (handleToolStart/End/Error keyed by runId, awaited so the
 * timestamps are taken when the events happen).
 */
import { createDeepAgent } from "deepagents";
import { fakeModel } from "@langchain/core/testing";
import { AIMessage, ToolMessage, type BaseMessage } from "@langchain/core/messages";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { rng } from "../helpers/random.js";

/** The part of a backend the harness itself uses (setup and final check); agents use the rest. */
export interface LoadBackend {
  write(path: string, content: string): Promise<{ error?: string }>;
  glob(pattern: string, path?: string): Promise<{ error?: string; files?: Array<{ path: string }> }>;
  downloadFiles(paths: string[]): Promise<Array<{ path: string; content: Uint8Array | null; error: string | null }>>;
}

export interface LoadOptions {
  /** Concurrent agents (default 8). */
  agents?: number;
  /** Tool calls per agent (default 200). */
  callsPerAgent?: number;
  /** Files under /shared/ every agent edits (default 4). */
  sharedFiles?: number;
  /**
   * Whether agents edit the shared files (default true). Turn it off on a store that does not
   * make concurrent edits of one object safe (an S3 server that ignores If-Match): those edits
   * then go to the agents' own files and the shared files are only read, listed and searched.
   */
  sharedEdits?: boolean;
  /**
   * Whether agents also read files other agents are writing at that moment (default true): a
   * grep over every agent's directory. Turn it off on a store whose overwrites are not atomic
   * (s3rver rewrites an object's file in place, so a GET racing a PUT of the same key can
   * return a truncated body); the grep then covers the agent's own directory.
   */
  crossAgentReads?: boolean;
  /** Seed of the scripts (default 1). */
  seed?: number;
}

export interface ToolLatency {
  tool: string;
  count: number;
  p50: number;
  p99: number;
  max: number;
}

export interface LoadResult {
  agents: number;
  callsPerAgent: number;
  /** Tool calls scripted (agents × callsPerAgent). */
  scripted: number;
  /** Tool messages received for scripted calls. */
  toolMessages: number;
  /** Model turns over all agents. */
  turns: number;
  /** Tool calls by name, as scripted. */
  mix: Record<string, number>;
  /** Tool results that are errors (content starting with "Error", status "error", or a missing result). */
  errors: string[];
  /** Query results that did not show the state the agent had already written. */
  staleReads: string[];
  /** Shared-file edits scripted, and how many of them are missing from the final files. */
  sharedEdits: number;
  lostSharedEdits: number;
  /** Shared edits scripted per shared file (index f is /shared/notes-f.md). */
  sharedEditsByFile: number[];
  /** Shared files whose final content is not exactly the expected one (tokens or anything else). */
  sharedFilesDiffering: number;
  /** Own-file edits scripted, own files expected at the end, and how many differ (or are missing/extra). */
  ownEdits: number;
  ownFiles: number;
  lostOwnFiles: string[];
  /** Tool starts minus ends+errors seen by the callback handler (0 when the handler saw everything). */
  unmatchedCallbacks: number;
  /** Wall time of the concurrent run (setup and final check excluded). */
  ms: number;
  /**
   * The process's event loop during the run (all agents share it, and with the in-process
   * s3rver the S3 server too): utilization 0–1 and the delay of its timers in ms. Near 1, tool
   * latency is mostly waiting for the loop, not for storage.
   */
  eventLoop: { utilization: number; delayP50: number; delayP99: number };
  latency: ToolLatency[];
  /** The backend calls under the tools (by method: write, edit, read, ls, glob, grep), timed in a Proxy. */
  storage: ToolLatency[];
  /** Raw latency samples (ms) by tool and by backend method, to merge rounds. */
  samples: Map<string, number[]>;
  storageSamples: Map<string, number[]>;
}

// ---- script generation --------------------------------------------------------------------------

type Check = (output: string) => string | null;
interface ScriptedCall {
  id: string;
  name: string;
  args: Record<string, unknown>;
  check?: Check;
}

const pad = (n: number, w: number) => String(n).padStart(w, "0");
const agentTag = (a: number) => `a${pad(a, 2)}`;
const sharedPath = (f: number) => `/shared/notes-${f}.md`;
/** The shared token of agent a's k-th shared edit (unique; never a substring of another). */
const sharedToken = (a: number, k: number) => `<${agentTag(a)}s${pad(k, 4)}>`;
const sharedDone = (a: number, k: number) => `[${agentTag(a)}s${pad(k, 4)}]`;

/** Shared files before any edit: one line per token, every agent's tokens spread over the files. */
function sharedLayout(agents: number, perAgent: number, files: number) {
  const lines: Array<Array<{ a: number; k: number }>> = Array.from({ length: files }, () => []);
  for (let a = 0; a < agents; a++) for (let k = 0; k < perAgent; k++) lines[(a + k) % files].push({ a, k });
  const render = (done: (a: number, k: number) => boolean) =>
    lines.map(
      (ls, f) =>
        `# shared notes ${f}\n` +
        ls.map(({ a, k }) => `${done(a, k) ? sharedDone(a, k) : sharedToken(a, k)} agent ${a} note ${k}\n`).join(""),
    );
  return { fileOf: (a: number, k: number) => (a + k) % files, lineCount: lines.map((ls) => ls.length + 1), render };
}

interface OwnFile {
  path: string;
  version: number;
  content: string;
  /** Tokens not yet edited. */
  pending: string[];
}

const KINDS = ["write_file", "edit_file", "read_file", "ls", "glob", "grep"] as const;
type Kind = (typeof KINDS)[number];
/** Share of each tool in a script: edits and reads dominate, as in real agent runs. */
const MIX: Record<Kind, number> = {
  write_file: 0.15,
  edit_file: 0.3,
  read_file: 0.25,
  ls: 0.08,
  glob: 0.1,
  grep: 0.12,
};
const isMutation = (k: Kind) => k === "write_file" || k === "edit_file";

function quotas(m: number): Kind[] {
  const counts = KINDS.map((k) => Math.floor(MIX[k] * m));
  counts[2] += m - counts.reduce((s, n) => s + n, 0); // rounding goes to read_file
  return KINDS.flatMap((k, i) => Array<Kind>(counts[i]).fill(k));
}

interface AgentScript {
  turns: ScriptedCall[][];
  own: Map<string, OwnFile>;
  sharedEditsDone: number;
  ownEdits: number;
}

/**
 * One agent's script. `sharedKs` is how many shared tokens the agent owns (edited in order,
 * spread over its edits); 0 when shared edits are off, and then every edit is an own-file edit.
 */
function agentScript(
  a: number,
  m: number,
  seed: number,
  sharedKs: number,
  layout: ReturnType<typeof sharedLayout>,
  sharedFiles: number,
  crossAgentReads: boolean,
): AgentScript {
  const rnd = rng(seed * 1000003 + a * 7919 + 17);
  const tag = agentTag(a);
  const dir = `/agents/${tag}`;
  const needle = `needle-${tag}`;
  const own = new Map<string, OwnFile>();
  let fileCounter = 0;
  let sharedNext = 0;
  let ownEdits = 0;
  let callCounter = 0;
  const id = () => `${tag}-c${pad(callCounter++, 5)}`;

  // Kinds in a seeded order, the first one a write so there is something to work on.
  const kinds = quotas(m);
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = rnd.int(i + 1);
    [kinds[i], kinds[j]] = [kinds[j], kinds[i]];
  }
  const firstWrite = kinds.indexOf("write_file");
  [kinds[0], kinds[firstWrite]] = [kinds[firstWrite], kinds[0]];
  // Half the edits (as far as there are shared tokens) go to shared files, spread through the run.
  const editCount = kinds.filter((k) => k === "edit_file").length;
  const sharedEvery = sharedKs > 0 ? editCount / sharedKs : Infinity;
  let editIndex = 0;

  const contentOf = (n: number, v: number, ext: string) => {
    const t = (i: number) => `<${tag}f${pad(n, 4)}v${v}t${i}>`;
    return {
      content: `// ${tag} file ${n} version ${v} (${ext})\n${t(0)} alpha ${needle}\n${t(1)} beta\n${t(2)} gamma\n${t(3)} delta\n`,
      pending: [0, 1, 2, 3].map(t),
    };
  };
  const ownFiles = () => [...own.values()].sort((x, y) => (x.path < y.path ? -1 : 1));
  const bytes = (s: string) => Buffer.byteLength(s, "utf8");
  const sameSet = (what: string, got: string[], want: string[]): string | null => {
    const g = [...got].sort().join("\n");
    const w = [...want].sort().join("\n");
    return g === w ? null : `${what}: expected [${w.replace(/\n/g, ", ")}], got [${g.replace(/\n/g, ", ")}]`;
  };
  const outputLines = (out: string) => out.split("\n").filter((l) => l.length > 0);

  const turns: ScriptedCall[][] = [];
  let i = 0;
  while (i < kinds.length) {
    const size = 1 + rnd.int(4);
    const mutating = isMutation(kinds[i]);
    const turn: ScriptedCall[] = [];
    const touched = new Set<string>();
    // Queries see the state as of the start of the turn (a query turn contains no mutation).
    const snapshot = ownFiles().map((f) => ({ ...f }));
    const sharedDoneSoFar = sharedNext;
    while (i < kinds.length && turn.length < size && isMutation(kinds[i]) === mutating) {
      const kind = kinds[i];
      if (kind === "edit_file" || kind === "write_file") {
        let call: ScriptedCall | undefined;
        if (kind === "edit_file") {
          const wantShared = sharedNext < sharedKs && editIndex++ >= sharedNext * sharedEvery;
          if (wantShared) {
            const k = sharedNext++;
            call = {
              id: id(),
              name: "edit_file",
              args: {
                file_path: sharedPath(layout.fileOf(a, k)),
                old_string: sharedToken(a, k),
                new_string: sharedDone(a, k),
              },
            };
          } else {
            const candidates = ownFiles().filter((f) => f.pending.length > 0 && !touched.has(f.path));
            if (candidates.length > 0) {
              const f = rnd.pick(candidates);
              const token = f.pending.splice(rnd.int(f.pending.length), 1)[0];
              const done = `[${token.slice(1, -1)}]`;
              f.content = f.content.replace(token, done);
              touched.add(f.path);
              ownEdits++;
              call = { id: id(), name: "edit_file", args: { file_path: f.path, old_string: token, new_string: done } };
            }
          }
        }
        if (!call) {
          // write_file (or an edit with nothing left to edit): a new file, or an overwrite of one.
          const existing = ownFiles().filter((f) => !touched.has(f.path));
          let f: OwnFile;
          if (existing.length > 0 && rnd.next() < 0.3) {
            f = rnd.pick(existing);
            f.version++;
          } else {
            const n = fileCounter++;
            const ext = rnd.next() < 0.5 ? "md" : "ts";
            f = { path: `${dir}/f${pad(n, 4)}.${ext}`, version: 1, content: "", pending: [] };
            own.set(f.path, f);
          }
          const n = Number(f.path.match(/f(\d+)\./)![1]);
          Object.assign(f, contentOf(n, f.version, f.path.slice(-2)));
          touched.add(f.path);
          call = { id: id(), name: "write_file", args: { file_path: f.path, content: f.content } };
        }
        turn.push(call);
      } else {
        turn.push(queryCall(kind));
      }
      i++;
    }
    turns.push(turn);

    function queryCall(kind: Kind): ScriptedCall {
      const mine = snapshot;
      const r = rnd.next();
      const shared = () => rnd.int(sharedFiles);
      /** The shared-done markers this agent has put in shared file f so far. */
      const doneIn = (f: number) =>
        Array.from({ length: sharedDoneSoFar }, (_, k) => k)
          .filter((k) => layout.fileOf(a, k) === f)
          .map((k) => sharedDone(a, k));
      if (kind === "read_file") {
        if (mine.length > 0 && r < 0.6) {
          const f = rnd.pick(mine);
          const want = f.content.split("\n").filter(Boolean);
          return {
            id: id(),
            name: "read_file",
            args: { file_path: f.path },
            check: (out) => {
              const missing = want.filter((l) => !out.includes(l));
              return missing.length === 0 ? null : `read_file ${f.path}: missing ${JSON.stringify(missing)}`;
            },
          };
        }
        const f = shared();
        const want = doneIn(f);
        return {
          id: id(),
          name: "read_file",
          args: { file_path: sharedPath(f), offset: 0, limit: layout.lineCount[f] + 1 },
          check: (out) => {
            const missing = want.filter((t) => !out.includes(t));
            return missing.length === 0
              ? null
              : `read_file ${sharedPath(f)}: own shared edits missing ${missing.join(" ")}`;
          },
        };
      }
      if (kind === "ls") {
        if (mine.length > 0 && r < 0.6) {
          return {
            id: id(),
            name: "ls",
            args: { path: dir },
            check: (out) =>
              sameSet(
                `ls ${dir}`,
                outputLines(out),
                mine.map((f) => `${f.path} (${bytes(f.content)} bytes)`),
              ),
          };
        }
        if (r < 0.8) {
          return {
            id: id(),
            name: "ls",
            args: { path: "/" },
            check: (out) =>
              ["/shared/ (directory)", ...(mine.length ? ["/agents/ (directory)"] : [])].every((l) =>
                outputLines(out).includes(l),
              )
                ? null
                : `ls /: got ${JSON.stringify(out)}`,
          };
        }
        const want = Array.from({ length: sharedFiles }, (_, f) => sharedPath(f));
        return {
          id: id(),
          name: "ls",
          args: { path: "/shared" },
          check: (out) =>
            sameSet(
              "ls /shared",
              outputLines(out).map((l) => l.replace(/ \(\d+ bytes\)$/, "")),
              want,
            ),
        };
      }
      if (kind === "glob") {
        if (r < 0.4 && mine.length > 0) {
          const want = mine.filter((f) => f.path.endsWith(".ts")).map((f) => f.path);
          return {
            id: id(),
            name: "glob",
            args: { pattern: "*.ts", path: dir },
            check: (out) =>
              want.length === 0
                ? out.startsWith("No files found")
                  ? null
                  : `glob *.ts in ${dir}: expected none, got ${out}`
                : sameSet(`glob *.ts in ${dir}`, outputLines(out), want),
          };
        }
        if (r < 0.8) {
          const want = mine.filter((f) => f.path.endsWith(".md")).map((f) => f.path);
          return {
            id: id(),
            name: "glob",
            args: { pattern: `${dir}/**/*.md` },
            check: (out) =>
              want.length === 0
                ? out.startsWith("No files found")
                  ? null
                  : `glob ${dir}/**/*.md: expected none, got ${out}`
                : sameSet(`glob ${dir}/**/*.md`, outputLines(out), want),
          };
        }
        const want = Array.from({ length: sharedFiles }, (_, f) => sharedPath(f));
        return {
          id: id(),
          name: "glob",
          args: { pattern: "**/*.md", path: "/shared" },
          check: (out) => sameSet("glob **/*.md in /shared", outputLines(out), want),
        };
      }
      // grep
      if (r < 0.5 && mine.length > 0) {
        const want = mine.map((f) => f.path);
        return {
          id: id(),
          name: "grep",
          args: { pattern: needle, path: dir, output_mode: "files_with_matches" },
          check: (out) => sameSet(`grep ${needle} in ${dir}`, outputLines(out), want),
        };
      }
      if (r < 0.8) {
        // How many of its shared edits this agent sees: exactly as many as it has made.
        const marker = `[${tag}s`;
        return {
          id: id(),
          name: "grep",
          args: { pattern: marker, path: "/shared", output_mode: "count" },
          check: (out) => {
            const seen = out.startsWith("No matches")
              ? 0
              : outputLines(out).reduce((s, l) => s + Number(l.match(/: (\d+)$/)?.[1] ?? NaN), 0);
            return seen === sharedDoneSoFar
              ? null
              : `grep ${marker} in /shared: ${seen} lines, expected ${sharedDoneSoFar}`;
          },
        };
      }
      if (mine.length > 0) {
        const f = rnd.pick(mine);
        const line = f.content.split("\n")[1 + rnd.int(4)];
        const token = line.split(" ")[0];
        const scope = crossAgentReads ? "/agents" : dir;
        return {
          id: id(),
          name: "grep",
          args: { pattern: token, path: scope, glob: "*.{md,ts}" },
          check: (out) =>
            sameSet(
              `grep ${token} in ${scope} (files)`,
              outputLines(out).filter((l) => l.endsWith(":")),
              [`${f.path}:`],
            ) ??
            (out.includes(line)
              ? null
              : `grep ${token}: expected the line ${JSON.stringify(line)}, got ${JSON.stringify(out)}`),
        };
      }
      return {
        id: id(),
        name: "grep",
        args: { pattern: "shared notes", path: "/shared" },
        check: (out) =>
          outputLines(out).filter((l) => l.endsWith(":")).length === sharedFiles ? null : `grep 'shared notes': ${out}`,
      };
    }
  }
  return { turns, own, sharedEditsDone: sharedNext, ownEdits };
}

// ---- latency -------------------------------------------------------------------------------------

/** Nearest-rank percentile of sorted samples. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export function summarize(samples: Map<string, number[]>, order: readonly string[] = KINDS): ToolLatency[] {
  const rank = (x: string) => (order.includes(x) ? order.indexOf(x) : order.length);
  return [...samples.entries()]
    .sort(([x], [y]) => rank(x) - rank(y) || (x < y ? -1 : 1))
    .map(([tool, xs]) => {
      const s = [...xs].sort((p, q) => p - q);
      return { tool, count: s.length, p50: percentile(s, 50), p99: percentile(s, 99), max: s[s.length - 1] };
    });
}

/**
 * A callback handler timing tool runs by runId. It is awaited (`awaitHandlers`), so each
 * timestamp is taken when LangChain reports the event, not later from a background queue.
 */
function toolTimer(nameOf: (toolCallId: string | undefined, runName: string | undefined) => string) {
  const started = new Map<string, { name: string; t: number }>();
  const samples = new Map<string, number[]>();
  let orphanEnds = 0;
  const end = (runId: string) => {
    const t = performance.now();
    const s = started.get(runId);
    if (!s) return void orphanEnds++;
    started.delete(runId);
    const xs = samples.get(s.name) ?? [];
    xs.push(t - s.t);
    samples.set(s.name, xs);
  };
  const handler = {
    awaitHandlers: true,
    handleToolStart(
      _tool: unknown,
      _input: string,
      runId: string,
      _parent?: string,
      _tags?: string[],
      _meta?: unknown,
      runName?: string,
      toolCallId?: string,
    ) {
      started.set(runId, { name: nameOf(toolCallId, runName), t: performance.now() });
    },
    handleToolEnd(_output: unknown, runId: string) {
      end(runId);
    },
    handleToolError(_err: unknown, runId: string) {
      end(runId);
    },
  };
  return { handler, samples, unmatched: () => orphanEnds + started.size };
}

/** The backend method each file tool calls. */
export const SHARED_DIR = "/shared";
export { sharedPath };
export const TOOL_METHOD: Record<string, string> = {
  write_file: "write",
  edit_file: "edit",
  read_file: "read",
  ls: "ls",
  glob: "glob",
  grep: "grep",
};
const TIMED = new Set(Object.values(TOOL_METHOD));

/**
 * The backend as the agent sees it, with the time of each storage call recorded: how much of a
 * tool call's latency is the storage round trip (the rest is the tool wrapper, LangGraph and
 * waiting for the event loop, which all agents of the process share).
 */
function timedBackend<T extends object>(backend: T, samples: Map<string, number[]>): T {
  return new Proxy(backend, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      if (typeof prop !== "string" || !TIMED.has(prop)) return value.bind(target);
      return async (...args: unknown[]) => {
        const t = performance.now();
        try {
          return await value.apply(target, args);
        } finally {
          const xs = samples.get(prop) ?? [];
          xs.push(performance.now() - t);
          samples.set(prop, xs);
        }
      };
    },
  });
}

// ---- the run -------------------------------------------------------------------------------------

const text = (m: ToolMessage) =>
  typeof m.content === "string" ? m.content : m.content.map((c) => ("text" in c ? c.text : JSON.stringify(c))).join("");

/**
 * Runs the workload on `backend` (a fresh, empty workspace). `agentBackend(i)` may hand each agent
 * its own backend object on the same workspace (separate clients, as separate replicas would
 * have); by default every agent uses `backend`.
 */
export async function runLoad(
  backend: LoadBackend,
  options: LoadOptions = {},
  agentBackend: (agent: number) => unknown = () => backend,
): Promise<LoadResult> {
  const agents = options.agents ?? 8;
  const m = options.callsPerAgent ?? 200;
  const sharedFiles = options.sharedFiles ?? 4;
  const seed = options.seed ?? 1;
  const sharedOn = options.sharedEdits ?? true;
  // Shared tokens per agent: half its edits, when shared edits are on.
  const editsPerAgent = quotas(m).filter((k) => k === "edit_file").length;
  const sharedPerAgent = sharedOn ? Math.floor(editsPerAgent / 2) : 0;
  // The shared files exist (with every token, one line each) whether or not they are edited.
  const layout = sharedLayout(
    agents,
    sharedOn ? sharedPerAgent : Math.max(1, Math.floor(editsPerAgent / 2)),
    sharedFiles,
  );
  const initial = layout.render(() => false);
  for (let f = 0; f < sharedFiles; f++) {
    const r = await backend.write(sharedPath(f), initial[f]);
    if (r.error) throw new Error(`setup: ${r.error}`);
  }

  const scripts = Array.from({ length: agents }, (_, a) =>
    agentScript(a, m, seed, sharedPerAgent, layout, sharedFiles, options.crossAgentReads ?? true),
  );
  const byId = new Map<string, ScriptedCall>();
  const mix: Record<string, number> = {};
  for (const s of scripts)
    for (const turn of s.turns)
      for (const c of turn) {
        byId.set(c.id, c);
        mix[c.name] = (mix[c.name] ?? 0) + 1;
      }
  const timer = toolTimer((toolCallId, runName) => (toolCallId && byId.get(toolCallId)?.name) || runName || "unknown");

  const storageSamples = new Map<string, number[]>();
  const errors: string[] = [];
  const staleReads: string[] = [];
  let toolMessages = 0;
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const elu = performance.eventLoopUtilization();
  const started = performance.now();
  await Promise.all(
    scripts.map(async (script, a) => {
      const model = fakeModel();
      // Scripted turns as AIMessages with tool calls. (respondWithTools would set each message's
      // content to the whole conversation so far, which grows exponentially over 50+ turns.)
      for (const turn of script.turns) {
        model.respond(
          new AIMessage({
            content: "",
            tool_calls: turn.map((c) => ({ id: c.id, name: c.name, args: c.args, type: "tool_call" as const })),
          }),
        );
      }
      model.respond(new AIMessage("done"));
      const agent = createDeepAgent({
        model,
        backend: timedBackend(agentBackend(a) as object, storageSamples) as never,
      });
      const result = await agent.invoke(
        { messages: [{ role: "user", content: `agent ${a}: work on your files and the shared notes` }] },
        { recursionLimit: 20 * (script.turns.length + 5), callbacks: [timer.handler] },
      );
      const seen = new Set<string>();
      for (const msg of result.messages as BaseMessage[]) {
        if (!ToolMessage.isInstance(msg)) continue;
        const call = byId.get(msg.tool_call_id);
        if (!call) continue;
        seen.add(call.id);
        toolMessages++;
        const out = text(msg);
        if (msg.status === "error" || /^error/i.test(out.trimStart())) {
          errors.push(`${call.id} ${call.name}(${JSON.stringify(call.args).slice(0, 200)}): ${out.slice(0, 300)}`);
          continue;
        }
        const problem = call.check?.(out);
        if (problem) staleReads.push(`${call.id}: ${problem}`);
      }
      for (const turn of script.turns)
        for (const c of turn) if (!seen.has(c.id)) errors.push(`${c.id} ${c.name}: no tool result`);
    }),
  );
  const ms = performance.now() - started;
  const eventLoop = {
    utilization: performance.eventLoopUtilization(elu).utilization,
    delayP50: delay.percentile(50) / 1e6,
    delayP99: delay.percentile(99) / 1e6,
  };
  delay.disable();

  // Final state: own files exactly as scripted, nothing else under /agents; shared files complete.
  const lostOwnFiles: string[] = [];
  const expectedOwn = new Map(scripts.flatMap((s) => [...s.own.values()].map((f) => [f.path, f.content] as const)));
  const listed = await backend.glob("**/*", "/agents");
  if (listed.error) throw new Error(`final glob: ${listed.error}`);
  const listedPaths = new Set((listed.files ?? []).map((f) => f.path));
  for (const p of listedPaths) if (!expectedOwn.has(p)) lostOwnFiles.push(`${p}: unexpected file`);
  for (const p of expectedOwn.keys()) if (!listedPaths.has(p)) lostOwnFiles.push(`${p}: not listed by glob`);
  const paths = [...expectedOwn.keys()];
  for (let i = 0; i < paths.length; i += 100) {
    const batch = paths.slice(i, i + 100);
    for (const [j, r] of (await backend.downloadFiles(batch)).entries()) {
      const got = r.content ? Buffer.from(r.content).toString("utf8") : null;
      if (got !== expectedOwn.get(batch[j])) lostOwnFiles.push(`${batch[j]}: ${r.error ?? "content differs"}`);
    }
  }
  let lostSharedEdits = 0;
  let sharedFilesDiffering = 0;
  const sharedFinal = await backend.downloadFiles(Array.from({ length: sharedFiles }, (_, f) => sharedPath(f)));
  const sharedText = sharedFinal.map((r) => (r.content ? Buffer.from(r.content).toString("utf8") : ""));
  // Every shared edit scripted (an agent's script uses its tokens in order, normally all of them).
  const scriptedShared = (a: number, k: number) => k < scripts[a].sharedEditsDone;
  for (let a = 0; a < agents; a++) {
    for (let k = 0; k < scripts[a].sharedEditsDone; k++) {
      const body = sharedText[layout.fileOf(a, k)];
      if (!body.includes(sharedDone(a, k)) || body.includes(sharedToken(a, k))) lostSharedEdits++;
    }
  }
  const sharedEditsByFile = Array<number>(sharedFiles).fill(0);
  for (let a = 0; a < agents; a++)
    for (let k = 0; k < scripts[a].sharedEditsDone; k++) sharedEditsByFile[layout.fileOf(a, k)]++;
  const expectedShared = layout.render(scriptedShared);
  for (let f = 0; f < sharedFiles; f++) {
    if (sharedText[f] !== expectedShared[f]) sharedFilesDiffering++;
  }

  return {
    agents,
    callsPerAgent: m,
    scripted: byId.size,
    toolMessages,
    turns: scripts.reduce((n, s) => n + s.turns.length, 0),
    mix,
    errors,
    staleReads,
    sharedEdits: scripts.reduce((n, s) => n + s.sharedEditsDone, 0),
    lostSharedEdits,
    sharedEditsByFile,
    sharedFilesDiffering,
    ownEdits: scripts.reduce((n, s) => n + s.ownEdits, 0),
    ownFiles: expectedOwn.size,
    lostOwnFiles,
    unmatchedCallbacks: timer.unmatched(),
    ms,
    eventLoop,
    latency: summarize(timer.samples),
    storage: summarize(storageSamples, Object.values(TOOL_METHOD)),
    samples: timer.samples,
    storageSamples,
  };
}

/** A markdown table of per-tool latency, with the storage call under each tool beside it. */
export function latencyTable(tools: ToolLatency[], storage: ToolLatency[] = []): string {
  const fmt = (x: number | undefined) =>
    x === undefined || Number.isNaN(x) ? "—" : x >= 100 ? x.toFixed(0) : x.toFixed(1);
  return [
    "| tool | calls | tool p50 (ms) | tool p99 (ms) | tool max (ms) | backend call | backend p50 (ms) | backend p99 (ms) |",
    "|---|---:|---:|---:|---:|---|---:|---:|",
    ...tools.map((r) => {
      const method = TOOL_METHOD[r.tool];
      const s = storage.find((x) => x.tool === method);
      return `| ${r.tool} | ${r.count} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${fmt(r.max)} | ${method ? `\`${method}\`${s && s.count !== r.count ? ` (${s.count})` : ""}` : ""} | ${fmt(s?.p50)} | ${fmt(s?.p99)} |`;
    }),
  ].join("\n");
}

/** One line for logs: sizes, time, errors, lost updates. */
export function describe(label: string, r: LoadResult): string {
  return (
    `${label}: ${r.agents} agents × ${r.callsPerAgent} tool calls (${r.scripted} calls in ${r.turns} model turns: ` +
    Object.entries(r.mix)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ") +
    `) in ${(r.ms / 1000).toFixed(1)} s (event loop ${(100 * r.eventLoop.utilization).toFixed(0)}% busy, delay p99 ${r.eventLoop.delayP99.toFixed(0)} ms); ${r.errors.length} errors, ${r.staleReads.length} stale reads, ` +
    `${r.sharedEdits} shared edits with ${r.lostSharedEdits} lost, ${r.ownEdits} own edits over ${r.ownFiles} files with ${r.lostOwnFiles.length} lost`
  );
}
