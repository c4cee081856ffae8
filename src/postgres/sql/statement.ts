/**
 * The typed boundary between TypeScript and the SQL the driver sends. Every file of sql/ is one
 * statement (mostly one call of a function our migrations install, so a backend call is one
 * round trip), loaded here with its named parameters compiled to $1..$n (./params.ts). A file
 * names the schema as {{schema}}; it is substituted as a quoted identifier.
 *
 * statement<Params, Row>("write") is the one typed definition of sql/write.sql (./queries.ts):
 * a named-parameter object in, rows of the declared type out. The parameter object's keys must be
 * exactly the file's parameters; anything else is a bug in the caller and throws before a query
 * is sent.
 */
import { readdirSync, readFileSync } from "node:fs";
import pg from "pg";
import { compileNamedParameters, type NamedSql } from "./params.js";

const SQL_DIR = new URL("../../../sql/", import.meta.url);

/** What a statement runs on: a pool or one of its clients. */
export interface Queryable {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
}

export interface Statement<P extends object, R> {
  /** The file's name without .sql. */
  readonly name: string;
  /** Its named parameters, in $n order. */
  readonly params: readonly string[];
  /** It changes nothing (so a lost connection may safely run it again; see connection.ts). */
  readonly readOnly: boolean;
  /**
   * The parameter naming the workspace whose files it may change, whose watchers the backend wakes
   * once it committed (connection.ts, wake-ups.ts), instead of its commit
   * (sql/wake_up_after_commit.sql wraps it); undefined when it changes no file.
   */
  readonly wakes?: keyof P;
  /** The text for `schema` and the values in $n order. Throws unless `params` has exactly the file's keys. */
  bind(schema: string, params: P): { text: string; values: unknown[] };
  /** One round trip on `db`; the rows as the driver returns them. */
  run(db: Queryable, schema: string, params: P): Promise<R[]>;
}

/** The row type of a statement. */
export type RowOf<S> = S extends Statement<infer _P, infer R> ? R : never;

/** The parameters of a statement that has none. */
export type NoParams = Record<string, never>;

/** Compiles every sql/*.sql file; a file the compiler refuses fails the import, naming the file. */
function loadDirectory(dir: URL): ReadonlyMap<string, NamedSql> {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".sql"))
    .sort();
  return new Map(
    files.map((file) => {
      try {
        return [file.slice(0, -4), compileNamedParameters(readFileSync(new URL(file, dir), "utf8"))];
      } catch (e) {
        throw new Error(`deepagents-backends: sql/${file}: ${(e as Error).message}`);
      }
    }),
  );
}

const sources = new Map(loadDirectory(SQL_DIR));
/** The file that wraps each statement with `wakes` (at its one {{statement}}), not a statement itself. */
export const WAKE_UP_WRAPPER = "wake_up_after_commit";
const wakeUpWrapper = sources.get(WAKE_UP_WRAPPER);
sources.delete(WAKE_UP_WRAPPER);
const defined = new Set<string>();

/** Every statement of sql/ (file names without .sql, but the wrapper's), sorted. */
export function statementNames(): string[] {
  return [...sources.keys()];
}

/** `source` wrapped by sql/wake_up_after_commit.sql (no parameters of its own: the $n stay). */
function wrappedForWakeUps(name: string, source: NamedSql): NamedSql {
  if (wakeUpWrapper?.text.split("{{statement}}").length !== 2 || wakeUpWrapper.params.length > 0)
    throw new Error(`deepagents-backends: sql/${WAKE_UP_WRAPPER}.sql cannot wrap sql/${name}.sql`);
  // Without the wrapper's own comment: pg_stat_activity shows a query's first 1 kB
  // (track_activity_query_size), which should name the wrapped function.
  const wrapper = wakeUpWrapper.text.replace(/^(?:--[^\n]*\n)+/, "");
  return { text: wrapper.replace("{{statement}}", () => source.text), params: source.params };
}

export function statement<P extends object, R>(
  name: string,
  options: { readOnly?: boolean; wakes?: keyof P & string } = {},
): Statement<P, R> {
  const file = sources.get(name);
  if (!file) throw new Error(`deepagents-backends: no sql/${name}.sql for the statement "${name}"`);
  if (defined.has(name)) throw new Error(`deepagents-backends: sql/${name}.sql is defined twice`);
  defined.add(name);
  const source = options.wakes === undefined ? file : wrappedForWakeUps(name, file);
  const { params } = source;
  const texts = new Map<string, string>();
  const textFor = (schema: string) => {
    let text = texts.get(schema);
    if (text === undefined) {
      text = source.text.replaceAll("{{schema}}", pg.escapeIdentifier(schema));
      texts.set(schema, text);
    }
    return text;
  };
  const bind = (schema: string, values: P) => {
    checkKeys(name, params, values);
    const record = values as Record<string, unknown>;
    return { text: textFor(schema), values: params.map((p) => record[p]) };
  };
  return {
    name,
    params,
    readOnly: options.readOnly ?? false,
    wakes: options.wakes,
    bind,
    async run(db, schema, values) {
      const query = bind(schema, values);
      return (await db.query(query.text, query.values)).rows as R[];
    },
  };
}

function checkKeys(name: string, expected: readonly string[], values: object): void {
  const keys = Object.keys(values ?? {});
  const missing = expected.filter((p) => !keys.includes(p));
  const unexpected = keys.filter((k) => !expected.includes(k));
  if (missing.length === 0 && unexpected.length === 0) return;
  const list = (names: string[]) => names.map((n) => `:${n}`).join(", ");
  throw new TypeError(
    `deepagents-backends: sql/${name}.sql takes ${expected.length === 0 ? "no parameters" : list([...expected])}` +
      (missing.length > 0 ? `; missing ${list(missing)}` : "") +
      (unexpected.length > 0 ? `; unexpected ${list(unexpected)}` : ""),
  );
}
