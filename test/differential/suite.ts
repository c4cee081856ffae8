/**
 * Differential test: seeded random scripts of operations run against deepagents' own
 * StoreBackend over InMemoryStore (the reference) and against PostgresBackend must give equal
 * results, with timestamps masked and docs/PROTOCOL.md's deviations applied to the
 * reference's answer (empty file, offset past the end, grep order, glob tie order).
 * Set DIFF_SCRIPTS / DIFF_SEED to change the run; a failure prints the seed and the script.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { StoreBackend } from "deepagents";
import { InMemoryStore } from "@langchain/langgraph";
import type { BackendProtocolV2 } from "deepagents";
import type { DeepAgentsBackend } from "../../src/core/interface.js";
import { EMPTY_FILE_CONTENT, errors } from "../../src/protocol.js";
import { RegexError, translateRegex } from "../../src/regex/index.js";
import { regexMatchesLine } from "../helpers/regex-oracle.js";
import { rng } from "../helpers/random.js";

const SCRIPTS = Number(process.env.DIFF_SCRIPTS ?? 200);
const SEED = Number(process.env.DIFF_SEED ?? Date.now() % 1_000_000);
const OPS_PER_SCRIPT = 30;

const FILES = [
  "/a.txt",
  "/b.md",
  "/dir/c.txt",
  "/dir/d.md",
  "/dir/sub/e.txt",
  "/dir2/f.txt",
  "/g.json",
  "/img.png",
] as const;
const DIRS = ["/", "/dir", "/dir/", "/dir/sub", "/dir2", "/nope"] as const;
const WORDS = ["foo", "bar", "baz", "foo bar", "l.", "[x]", "q_x", "50%", "a\\b", "$&"] as const;
const GREP_GLOBS = [null, "*.txt", "*.md", "*.{txt,md}", "c*", "*"] as const;
const GLOBS = ["*", "*.txt", "**/*.md", "**", "dir/*", "**/*.{txt,json}", "?.md", "sub/**", "**/e.*"] as const;
// search({ regex: true }) against the reference's texts and src/regex/'s language: lookarounds
// at line edges, \b, anchors next to the \r of CRLF text, \u{...}, a refused inline flag.
const REGEXES = [
  "foo(?!\\s)",
  "(?<!\\s)foo",
  "bar(?!\\W)",
  "(?<!\\W)bar",
  "baz(?=\\s)",
  "(?<=\\s)baz",
  "^foo",
  "bar$",
  "\\bbar\\b",
  "\\r$",
  "^$",
  "^.{3}$",
  "\\u{66}oo",
  "l\\.",
  "\\[x\\]",
  "q_x\\b",
  "(?i)foo",
  "\\$&",
  "a\\\\b",
  "^(?!foo)",
] as const;
const SEARCH_DIRS = ["/", "/dir", "/dir/sub", "/nope"] as const;

type Op = { op: string; args: unknown[] };

function makeScript(seed: number): Op[] {
  const r = rng(seed);
  const line = () => Array.from({ length: r.int(4) }, () => r.pick(WORDS)).join(" ");
  const text = () => {
    const lines = Array.from({ length: r.int(6) }, line);
    const eol = r.int(5) === 0 ? "\r\n" : "\n";
    return lines.join(eol) + (lines.length && r.int(2) ? eol : "");
  };
  const png = () => Buffer.from(Array.from({ length: 1 + r.int(20) }, () => r.int(256))).toString("base64");
  const contentFor = (path: string) => (path.endsWith(".png") ? png() : text());
  const ops: Op[] = [];
  for (let i = 0; i < OPS_PER_SCRIPT; i++) {
    const path = r.pick(FILES);
    switch (
      r.pick([
        "write",
        "write",
        "write",
        "edit",
        "edit",
        "read",
        "readRaw",
        "ls",
        "grep",
        "grep",
        "glob",
        "delete",
        "upload",
        "download",
        "search",
      ])
    ) {
      case "write":
        ops.push({ op: "write", args: [path, contentFor(path)] });
        break;
      case "edit":
        ops.push({ op: "edit", args: [path, r.int(8) === 0 ? "" : r.pick(WORDS), r.pick(WORDS), r.int(3) === 0] });
        break;
      case "read":
        ops.push({ op: "read", args: [path, r.int(7), r.pick([0, 1, 2, 3, 500])] });
        break;
      case "readRaw":
        ops.push({ op: "readRaw", args: [path] });
        break;
      case "ls":
        ops.push({ op: "ls", args: [r.pick([...DIRS, path])] });
        break;
      case "grep":
        ops.push({
          op: "grep",
          args: [
            r.int(10) === 0 ? "" : r.pick(WORDS),
            r.pick([...DIRS, path]),
            r.pick(GREP_GLOBS),
            r.pick([null, null, 1, 2, 5]),
          ],
        });
        break;
      case "glob":
        ops.push({ op: "glob", args: [r.pick(GLOBS), r.pick([...DIRS, path])] });
        break;
      case "delete":
        ops.push({ op: "delete", args: [r.pick([...FILES, ...DIRS.filter((d) => d !== "/")])] });
        break;
      case "upload": {
        const body = path.endsWith(".png") ? Buffer.from(png(), "base64") : Buffer.from(text());
        ops.push({ op: "upload", args: [path, body.toString("base64")] });
        break;
      }
      case "download":
        ops.push({ op: "download", args: [[path, r.pick(FILES), "/dir"]] });
        break;
      case "search":
        ops.push({ op: "search", args: [r.pick(REGEXES), r.int(3) === 0, r.pick(SEARCH_DIRS)] });
        break;
    }
  }
  return ops;
}

// JSON-safe comparison: bytes as arrays, undefined keys dropped, timestamps masked.
function plain(value: unknown): unknown {
  return JSON.parse(
    JSON.stringify(value, (key, v) => {
      if (key === "created_at" || key === "modified_at") return "<time>";
      if (key === "version") return undefined;
      if (v && typeof v === "object" && (v.type === "Buffer" || ArrayBuffer.isView(v)))
        return { bytes: Array.from(ArrayBuffer.isView(v) ? (v as Uint8Array) : v.data) };
      if (v instanceof Uint8Array) return { bytes: Array.from(v) };
      return v;
    }),
  );
}

type Searchable = {
  search(o: { pattern: string; regex: boolean; ignoreCase: boolean; path: string }): Promise<unknown>;
};
/** The reference (StoreBackend) and ours both go through apply(): the protocol with its optional methods. */
type Backend = BackendProtocolV2 & Required<Pick<BackendProtocolV2, "delete" | "uploadFiles" | "downloadFiles">>;

async function apply(b: Backend, { op, args }: Op): Promise<unknown> {
  const a = args as any[];
  switch (op) {
    case "write":
      return b.write(a[0], a[1]);
    case "edit":
      return b.edit(a[0], a[1], a[2], a[3]);
    case "read":
      return b.read(a[0], a[1], a[2]);
    case "readRaw":
      return b.readRaw(a[0]);
    case "ls":
      return b.ls(a[0]);
    case "grep":
      return b.grep(a[0], a[1], a[2], a[3]);
    case "glob":
      return b.glob(a[0], a[1]);
    case "delete":
      return b.delete(a[0]);
    case "upload":
      return b.uploadFiles([[a[0], new Uint8Array(Buffer.from(a[1], "base64"))]]);
    case "download":
      return b.downloadFiles(a[0]);
    case "search":
      return "search" in b
        ? (b as unknown as Searchable).search({ pattern: a[0], regex: true, ignoreCase: a[1], path: a[2] })
        : null;
  }
  throw new Error(op);
}

/** grepStream()/searchStream() of a grep or search step, collected: its matches, or the error it threw. */
async function streamed(b: DeepAgentsBackend, { op, args }: Op): Promise<unknown> {
  const a = args as any[];
  const stream =
    op === "grep"
      ? b.grepStream(a[0], a[1], a[2], a[3])
      : b.searchStream({ pattern: a[0], regex: true, ignoreCase: a[1], path: a[2] });
  const matches = [];
  try {
    for await (const m of stream) matches.push(m);
  } catch (e) {
    return { error: (e as Error).message };
  }
  return { matches };
}

/** The reference's answer with docs/PROTOCOL.md's deviations applied. */
async function expected(ref: InstanceType<typeof StoreBackend>, step: Op, raw: any): Promise<unknown> {
  const a = step.args as any[];
  if (step.op === "search") {
    // StoreBackend has no search(): the regex language's meaning over the reference's texts.
    try {
      translateRegex(a[0], a[1]);
    } catch (e) {
      if (e instanceof RegexError) return { error: errors.invalidRegex(a[0], e.reason) };
      throw e;
    }
    const matches: Array<{ path: string; line: number; text: string }> = [];
    const under = a[2] === "/" ? "/" : `${a[2]}/`;
    const paths = ((await ref.glob("**", "/")).files ?? [])
      .map((f) => f.path)
      .filter((p) => p.startsWith(under) && !p.endsWith(".png"))
      .sort();
    for (const path of paths) {
      const text = (await ref.readRaw(path)).data!.content as string;
      text.split("\n").forEach((line, i) => {
        if (regexMatchesLine(a[0], a[1], line)) matches.push({ path, line: i + 1, text: line });
      });
    }
    return { matches };
  }
  if (step.op === "read" && !raw.error && typeof raw.content === "string") {
    const stored = (await ref.readRaw(a[0])).data!.content as string;
    const lines = stored.split("\n");
    const total = lines[lines.length - 1] === "" ? lines.length - 1 : lines.length;
    if (stored === "") return { content: EMPTY_FILE_CONTENT, mimeType: raw.mimeType };
    if (a[1] >= total) return { error: `Line offset ${a[1]} exceeds file length (${total} lines)` };
  }
  if (step.op === "grep" && raw.matches) {
    // Ours is ordered by path then line and capped in that order; the reference caps in
    // insertion order. Compare with the reference's full answer, ordered and capped the same way.
    const full = await ref.grep(a[0], a[1], a[2], null);
    const sorted = [...full.matches!].sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : x.line - y.line));
    const cap = a[3];
    if (cap != null && sorted.length > cap) return { matches: sorted.slice(0, cap), truncated: true };
    return { matches: sorted };
  }
  return raw;
}

const dirHasFiles = async (b: Backend, dir: string) => ((await b.ls(dir)).files ?? []).length > 0;

function comparable(step: Op, value: any): unknown {
  if (step.op === "glob" && value.files) {
    // Order is newest first; ties (same millisecond) may differ, so compare as a sorted set.
    return { files: [...value.files].sort((x: any, y: any) => (x.path < y.path ? -1 : 1)).map(plain) };
  }
  return plain(value);
}

/**
 * Registers and runs the differential test for one backend: `fresh()` gives an empty workspace
 * per script, `close()` runs at the end.
 */
export function differential(
  name: string,
  target: { fresh(): Promise<DeepAgentsBackend>; close(): Promise<void> },
): void {
  test(`${SCRIPTS} random scripts: ${name} equals StoreBackend (seed ${SEED})`, async () => {
    let compared = 0;
    // How many comparisons had something in them: the scripts must exercise real content.
    const nonEmpty = { grep: 0, glob: 0, read: 0, ls: 0, editOk: 0, errors: 0, search: 0 };
    try {
      for (let s = 0; s < SCRIPTS; s++) {
        const seed = SEED + s;
        const script = makeScript(seed);
        const ref = new StoreBackend({ store: new InMemoryStore(), namespace: ["diff", String(seed)] });
        const ours = await target.fresh();
        for (let i = 0; i < script.length; i++) {
          const step = script[i];
          const refRaw: any = await apply(ref, step);
          const got: any = await apply(ours, step);
          let want: any = await expected(ref, step, refRaw);
          if (step.op === "download" && (await dirHasFiles(ref, "/dir"))) {
            // deviation: a directory is `is_directory` (the reference says file_not_found)
            want = (want as any[]).map((d) => (d.path === "/dir" ? { ...d, error: "is_directory" } : d));
          }
          // got and want first, on one line each: CI keeps the head of a long failure, not uvu's diff.
          const message = [
            `seed ${seed}, step ${i}: ${JSON.stringify(step)}`,
            `got:  ${JSON.stringify(comparable(step, got))}`,
            `want: ${JSON.stringify(comparable(step, want))}`,
            `script: ${JSON.stringify(script.slice(0, i + 1))}`,
          ].join("\n");
          assert.equal(comparable(step, got), comparable(step, want), message);
          if (step.op === "grep" || step.op === "search") {
            // The stream of the same request: the same matches in the same order, or the same error.
            assert.equal(
              await streamed(ours, step),
              got.error ? { error: got.error } : { matches: got.matches },
              message,
            );
          }
          if (step.op === "glob" && got.files) {
            const times = got.files.map((f: any) => f.modified_at);
            assert.equal(times, [...times].sort().reverse(), `glob newest first: ${message}`);
          }
          compared++;
          if (step.op === "grep" && got.matches?.length) nonEmpty.grep++;
          if (step.op === "search" && got.matches?.length) nonEmpty.search++;
          if (step.op === "glob" && got.files?.length) nonEmpty.glob++;
          if (step.op === "read" && typeof got.content === "string" && got.content.length) nonEmpty.read++;
          if (step.op === "ls" && got.files?.length) nonEmpty.ls++;
          if (step.op === "edit" && got.occurrences !== undefined) nonEmpty.editOk++;
          if (got.error) nonEmpty.errors++;
        }
      }
    } finally {
      await target.close();
    }
    assert.is(compared, SCRIPTS * OPS_PER_SCRIPT);
    for (const [kind, n] of Object.entries(nonEmpty))
      assert.ok(n >= SCRIPTS / 8, `${kind}: only ${n} non-trivial results`);
    console.log(`compared ${compared} operations; non-trivial: ${JSON.stringify(nonEmpty)}`);
  });
  test.run();
}
