/**
 * Row-level security (migrations/0004_row_level_security.sql): which database roles may use which
 * workspaces. The grants are rows of `workspace_grants`, managed by the schema owner through the
 * SQL functions grant_workspace()/revoke_workspace(), which these wrap; a backend connected as a
 * restricted role runs with `rowLevelSecurity: true` and checks its grant in initialize().
 */
import type pg from "pg";
import { validateSchema } from "./config.js";
import * as sql from "./sql/queries.js";
import { validateWorkspace } from "../paths.js";
import { setupErrors } from "../protocol.js";
import { unwrapRemoteError } from "./cluster/remote-errors.js";

function checkRole(role: unknown): string {
  if (typeof role !== "string" || role.length === 0 || Buffer.byteLength(role) > 63) {
    throw new Error(setupErrors.invalidRole(role));
  }
  return role;
}

/**
 * Lets `role` use `workspace` (`null`: every workspace) in `schema`, and grants it the table
 * privileges the backend needs (never TRUNCATE). Run as the schema owner, e.g. over the pool of a
 * backend connected as the owner. Returns false when the grant already existed.
 */
export async function grantWorkspace(
  pool: pg.Pool | pg.ClientBase,
  schema: string,
  role: string,
  workspace: string | null,
): Promise<boolean> {
  const rows = await sql.grantWorkspace
    .run(pool, validateSchema(schema), {
      role: checkRole(role),
      workspace: workspace === null ? null : validateWorkspace(workspace),
    })
    .catch((e) => Promise.reject(unwrapRemoteError(e)));
  return rows[0].granted;
}

/**
 * Removes `role`'s grant of `workspace` (`null`: its all-workspaces grant); with its last grant
 * gone, its privileges on the schema go too. Returns false when there was no such grant.
 */
export async function revokeWorkspace(
  pool: pg.Pool | pg.ClientBase,
  schema: string,
  role: string,
  workspace: string | null,
): Promise<boolean> {
  const rows = await sql.revokeWorkspace
    .run(pool, validateSchema(schema), {
      role: checkRole(role),
      workspace: workspace === null ? null : validateWorkspace(workspace),
    })
    .catch((e) => Promise.reject(unwrapRemoteError(e)));
  return rows[0].revoked;
}
