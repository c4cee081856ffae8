/**
 * One regex language on both backends (src/regex/). The same cases run through
 * PostgresBackend.search() and S3Backend.search() and are compared with a JavaScript oracle
 * (helpers/regex-oracle.ts: per line, `new RegExp(pattern, "u" + (ignoreCase ? "i" : ""))` tried
 * at every code point of the line). Refused patterns get the same one-line error from both. Then
 * seeded random patterns go straight through PostgreSQL's `~` (the line test, and the (?n) chunk
 * prefilter, which must match every chunk holding a matching line), and the Unicode facts the
 * translation rests on are checked against this Node's own tables. (The differential suite also
 * runs regex searches in its random scripts, on both backends.)
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { compileLineTest, hasCase, JS_SPACE, translateRegex } from "../src/regex/index.js";
import { adminClient, testBackend, uniqueName } from "./helpers/db.js";
import { startTestS3 } from "./helpers/s3.js";
import { rng } from "./helpers/random.js";
import { regexMatchesLine } from "./helpers/regex-oracle.js";

const pgBase = await testBackend();
const s3 = await startTestS3();
const s3Base = await s3.backend();
const admin = await adminClient();
test.after(async () => {
  await pgBase.close();
  await s3.close();
  await admin.end();
});

const oracle = regexMatchesLine;

const FILES: Record<string, string> = {
  "/edge.txt": "xfoo\nbar", // the case: a lookahead at a line's end saw the next line's \n
  "/edge2.txt": "bar\nfoo", // and a lookbehind at a line's start the previous line's
  "/astral.txt": ["😀", "a😀b", "😁", "😃", "ab", "A", "u".repeat(41), "x\u{1F600}"].join("\n") + "\n",
  "/words.txt": ["éin", "in", "a in b", "naïve", "日本語", "été", "_in_", "ĸin"].join("\n"),
  "/case.txt":
    ["straße", "STRASSE", "İstanbul", "istanbul", "\u212A", "k", "K", "\u017F", "s", "S", "ß", "ẞ"].join("\n") + "\n",
  "/crlf.txt": ["x;", "tab\there", "", "last"].join("\r\n") + "\r\n",
  "/blank.md": "\n\n \n\u00a0\n\u2028\n",
};
// A file of many chunks (3 kB each): lookarounds at chunk edges too.
FILES["/big.txt"] = Array.from({ length: 400 }, (_, i) => (i % 7 === 3 ? `foo ${i}` : `${"x".repeat(i % 50)}foo`)).join(
  "\n",
);

const CASES: Array<[string, boolean?]> = [
  // lookarounds at line edges (the six, and positive ones)
  ["foo(?!\\s)"],
  ["(?<!\\s)foo"],
  ["foo(?!\\W)"],
  ["(?<!\\W)foo"],
  ["foo(?!\\n)"],
  ["(?<!\\n)foo"],
  ["foo(?=\\s)"],
  ["(?<=\\s)bar"],
  ["foo(?![^])"],
  ["(?<![^])bar"],
  ["(?<=^x)foo$"],
  ["foo(?=$)"],
  ["^(?=bar)"],
  ["(?<=\\W)\\d+$"],
  ["(?!x)foo"],
  // astral characters: code points, not UTF-16 halves
  ["^.$"],
  ["^[😀-😂]$"],
  ["^\\u{1F600}$"],
  ["\\uD83D\\uDE00"],
  ["^..$"],
  ["a.b"],
  ["^[^a]$"],
  ["^[^😀]$"],
  ["😀+"],
  ["x[\\u{1F600}]$"],
  ["(?!\\W)"],
  ["\\B"],
  // \u{...} is a code point under u (not "u" 41 times)
  ["\\u{41}"],
  ["^\\u{41}$"],
  ["^u{41}$"],
  ["\\x41"],
  // \b and \w are ASCII: é, ï, ĸ are not word characters
  ["\\bin\\b"],
  ["\\Bin\\b"],
  ["in\\b"],
  ["\\bna"],
  ["ve\\b"],
  ["\\b日"],
  ["^\\w+$"],
  ["\\W"],
  ["t\\B"],
  // ^ and $ at line ends; a \r before the \n is part of the line; empty lines
  [";$"],
  [";\\r$"],
  ["\\r$"],
  ["^$"],
  ["^\\s*$"],
  ["e$"],
  [".$"],
  ["^\\S*$"],
  ["^[^]$"],
  ["\\s"],
  ["^\\s$"],
  // case-insensitive: ASCII letters fold as JavaScript's /ui folds them (K and ſ included)
  ["strasse", true],
  ["STRASSE", true],
  ["^k$", true],
  ["^s$", true],
  ["^\\w$", true],
  ["^[a-z]$", true],
  ["^[^a-z]$", true],
  ["istanbul", true],
  ["\\bs", true],
  ["^\\W$", true],
  ["[j-l]", true],
  ["日本", true],
  ["^[😀-😂]$", true],
  ["FOO(?!\\s)", true],
];

const REFUSED: Array<[string, boolean, RegExp]> = [
  ["(?i)abc", false, /inline flags and modifiers such as \(\?i\) are not supported; use the ignoreCase option$/],
  ["(?i:a)b", false, /inline flags/],
  ["a(?-i)b", false, /inline flags/],
  [
    "straße",
    true,
    /ignoreCase with the non-ASCII letter 'ß' \(U\+00DF\): its case folding differs between JavaScript and PostgreSQL$/,
  ],
  ["İstanbul", true, /'İ' \(U\+0130\)/],
  ["\\u212A", true, /'\u212A' \(U\+212A\)/],
  ["[à-ÿ]", true, /in a class range/],
  ["[^\\u0100-\\u{10FFFF}]", true, /in a class range/],
  ["(a)\\1", false, /back-references/],
  ["(?<n>a)\\k<n>", false, /named groups/],
  ["(?<n>a)", false, /named groups \(\?<name>\.\.\.\) are not supported/],
  ["\\p{L}", false, /Unicode property escapes/],
  ["a{256}", false, /repetition bounds above 255/],
  ["{x}", false, /Lone quantifier brackets/],
  ["a{,3}", false, /Incomplete quantifier/],
  ["\\q", false, /Invalid escape/],
  ["[\\W]", false, /\\W inside a character class/],
  ["(unclosed", false, /Unterminated group/],
];

async function loaded<
  B extends { uploadFiles(files: Array<[string, Uint8Array]>): Promise<Array<{ error: unknown }>> },
>(b: B): Promise<B> {
  const results = await b.uploadFiles(Object.entries(FILES).map(([p, text]) => [p, new TextEncoder().encode(text)]));
  assert.ok(
    results.every((r) => r.error === null),
    JSON.stringify(results),
  );
  return b;
}
const pg = await loaded(pgBase.withWorkspace(uniqueName("rx")));
const s3b = await loaded(s3Base.withWorkspace(`rx-${Math.random().toString(36).slice(2, 10)}`));

function expected(pattern: string, ignoreCase: boolean): string[] {
  const out: string[] = [];
  for (const path of Object.keys(FILES).sort()) {
    FILES[path].split("\n").forEach((line, i) => {
      if (oracle(pattern, ignoreCase, line)) out.push(`${path}:${i + 1}:${JSON.stringify(line)}`);
    });
  }
  return out;
}

const shown = (r: { matches?: Array<{ path: string; line: number; text: string }>; error?: string }) =>
  r.error ?? r.matches!.map((m) => `${m.path}:${m.line}:${JSON.stringify(m.text)}`);

for (const [pattern, ignoreCase = false] of CASES) {
  test(`/${pattern}/${ignoreCase ? "i" : ""}: PostgreSQL, S3 and JavaScript's per-line matching agree`, async () => {
    const want = expected(pattern, ignoreCase);
    const options = { pattern, regex: true, ignoreCase };
    assert.equal(shown(await pg.search(options)), want, "PostgreSQL");
    assert.equal(shown(await s3b.search(options)), want, "S3");
  });
}

test("the cases have something to compare: most match some lines but not all", () => {
  const counts = CASES.map(([p, i = false]) => expected(p, i).length);
  const lines = Object.values(FILES).reduce((n, text) => n + text.split("\n").length, 0);
  assert.ok(counts.filter((n) => n > 0).length >= CASES.length * 0.8, JSON.stringify(counts));
  assert.ok(counts.filter((n) => n < lines).length >= CASES.length * 0.8, JSON.stringify(counts));
});

for (const [pattern, ignoreCase, reason] of REFUSED) {
  test(`refused on both backends with the same error: /${pattern}/${ignoreCase ? "i" : ""}`, async () => {
    const options = { pattern, regex: true, ignoreCase };
    const fromPg = await pg.search(options);
    const fromS3 = await s3b.search(options);
    assert.is(fromPg.matches, undefined);
    assert.is(fromS3.error, fromPg.error);
    assert.ok(fromPg.error!.startsWith(`Error: Invalid regular expression '`), fromPg.error);
    assert.match(fromPg.error!, reason);
    assert.not.match(fromPg.error!, /\n/);
  });
}

// Random patterns from pieces that tell ARE and JavaScript apart, on random lines of awkward
// characters: PostgreSQL's line test equals the oracle on every line, the chunk prefilter passes
// every chunk that has a matching line, and S3's compiled test equals the oracle.
const PIECES = [
  "a",
  "b",
  "k",
  "s",
  "S",
  "1",
  ".",
  "\\w",
  "\\W",
  "\\d",
  "\\D",
  "\\s",
  "\\S",
  "\\b",
  "\\B",
  "^",
  "$",
  "[a-z]",
  "[^a-z]",
  "[\\w-]",
  "[^\\s]",
  "😀",
  "[😀-😂]",
  "é",
  "日",
  "\\u{1F600}",
  "\\x61",
  "-",
  "\\.",
  "[.]",
  "\\r",
  "\\t",
  "[^]",
  "_",
  "[k-s]",
  "[K]",
  "\\u00a0",
];
const CHARS = [
  "a",
  "b",
  "k",
  "K",
  "s",
  "S",
  "é",
  "É",
  "😀",
  " ",
  "\r",
  "\u00a0",
  "-",
  "_",
  "1",
  "\u212a",
  "\u017f",
  "ß",
  "日",
  "\t",
  ".",
  "İ",
  "i",
  "\u2028",
];
const SEED = Number(process.env.REGEX_SEED ?? Date.now() % 1_000_000);

test(`random patterns (seed ${SEED}): PostgreSQL's ARE and S3's test equal the oracle line by line; the chunk test never drops a match`, async () => {
  const r = rng(SEED);
  const piece = (depth: number): string => {
    const k = r.int(10);
    let s = k < 6 || depth > 2 ? r.pick(PIECES) : `(${["?=", "?!", "?<=", "?<!"][k - 6]}${sequence(depth + 1)})`;
    if (r.int(5) === 0 && !/^[\^$]$|^\\[bB]$|^\(\?/.test(s)) s += r.pick(["*", "+", "?", "{2}", "{0,2}", "*?"]);
    if (r.int(8) === 0) s = `(${s}|${r.pick(PIECES)})`;
    return s;
  };
  const sequence = (depth: number) => Array.from({ length: 1 + r.int(4) }, () => piece(depth)).join("");
  let lines = 0;
  let matched = 0;
  for (let n = 0; n < 300; n++) {
    const pattern = sequence(0);
    const ignoreCase = r.int(2) === 1;
    let t: ReturnType<typeof translateRegex>;
    try {
      t = translateRegex(pattern, ignoreCase);
    } catch {
      continue; // a refusal is covered above; here only accepted patterns are compared
    }
    const texts = Array.from({ length: 12 }, () => Array.from({ length: r.int(6) }, () => r.pick(CHARS)).join(""));
    const { rows } = await admin.query(
      "SELECT l ~ $2 AS line, array_to_string($1, E'\\n') ~ ('(?n)' || $3) AS chunk FROM unnest($1::text[]) l",
      [texts, t.source, t.chunkSource],
    );
    const s3Test = compileLineTest(pattern, ignoreCase);
    const message = `seed ${SEED}: /${pattern}/${t.flags} (ARE ${t.source})`;
    texts.forEach((line, i) => {
      const want = oracle(pattern, ignoreCase, line);
      assert.is(rows[i].line, want, `${message} on ${JSON.stringify(line)}`);
      assert.is(s3Test(line), want, `S3: ${message} on ${JSON.stringify(line)}`);
      if (want) assert.ok(rows[i].chunk, `chunk test: ${message} on ${JSON.stringify(texts)}`);
      lines++;
      if (want) matched++;
    });
  }
  assert.ok(lines > 2000 && matched > lines / 10 && matched < lines * 0.9, `${matched} of ${lines} lines matched`);
});

test("the chunk pattern keeps pg_trgm's trigrams on both sides of \\w (any character there, a superset, not our exact bracket)", async () => {
  const { source, chunkSource } = translateRegex("deprecat\\w+ since");
  assert.is(chunkSource, "deprecat.+\\ since");
  assert.not.match(source, /\\w/, "the line test keeps JavaScript's ASCII \\w");
  const db = await adminClient();
  try {
    const ext = (
      await db.query("SELECT extnamespace::regnamespace::text AS s FROM pg_extension WHERE extname = 'pg_trgm'")
    ).rows[0].s;
    await db.query("BEGIN");
    await db.query(`CREATE TEMP TABLE trgm_probe (content text) ON COMMIT DROP`);
    await db.query(`INSERT INTO trgm_probe SELECT 'deprecatedThing ' || i || ' until' FROM generate_series(1, 300) i`);
    await db.query(`INSERT INTO trgm_probe VALUES ('deprecatedThing since 2024')`);
    await db.query(`CREATE INDEX ON trgm_probe USING gin (content ${ext}.gin_trgm_ops)`);
    await db.query("SET LOCAL enable_seqscan = off");
    const candidates = async (pattern: string) => {
      const plan = (
        await db.query(`EXPLAIN (ANALYZE, FORMAT JSON) SELECT 1 FROM trgm_probe WHERE content ~ $1`, [`(?n)${pattern}`])
      ).rows[0]["QUERY PLAN"][0].Plan;
      const scan = plan.Plans?.find((p: { "Node Type": string }) => p["Node Type"] === "Bitmap Index Scan");
      return scan?.["Actual Rows"] as number;
    };
    assert.is(await candidates(chunkSource), 1, "only the chunk with both trigram runs");
    assert.is(
      await candidates(source),
      301,
      "the exact bracket loses the trigrams of ' since' (why the chunk pattern differs)",
    );
  } finally {
    await db.query("ROLLBACK").catch(() => {});
    await db.end();
  }
});

test("JavaScript's \\s is the 25 code points src/regex/ spells out", () => {
  const listed = (cp: number) => JS_SPACE.some(([lo, hi]) => lo <= cp && cp <= hi);
  for (let cp = 0; cp <= 0x10ffff; cp++) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    if (/\s/u.test(String.fromCodePoint(cp)) !== listed(cp)) assert.unreachable(`U+${cp.toString(16)}`);
  }
});

test("under /ui only U+017F (ſ) and U+212A (Kelvin sign) fold onto ASCII letters, digits or _", () => {
  const extra: number[] = [];
  for (let cp = 0x80; cp <= 0x10ffff; cp++) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    if (/[\w]/iu.test(String.fromCodePoint(cp))) extra.push(cp);
  }
  assert.equal(extra, [0x17f, 0x212a]);
});

test("a character src/regex/ lets through under ignoreCase (no case) matches only itself under /ui", () => {
  // Every character with case, against one class of every caseless one: none may match.
  const ranges: string[] = [];
  const cased: number[] = [];
  let start = -1;
  for (let cp = 0x80; cp <= 0x110000; cp++) {
    const caseless = cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff) && !hasCase(cp);
    if (!caseless && cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff)) cased.push(cp);
    if (caseless && start < 0) start = cp;
    if (!caseless && start >= 0) {
      ranges.push(`\\u{${start.toString(16)}}-\\u{${(cp - 1).toString(16)}}`);
      start = -1;
    }
  }
  const anyCaseless = new RegExp(`^[${ranges.join("")}]$`, "ui");
  const hits = cased.filter((cp) => anyCaseless.test(String.fromCodePoint(cp)));
  assert.equal(
    hits.map((cp) => cp.toString(16)),
    [],
  );
  assert.ok(cased.includes(0xdf) && cased.includes(0x130) && cased.includes(0x212a) && !cased.includes(0x65e5));
});

test.run();
