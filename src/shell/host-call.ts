/**
 * Storage calls made while a script runs. just-bash's defense in depth blocks globals the storage
 * drivers need (process.env, timers, ...) for the script's async context; a call of the backend is
 * host infrastructure, so it runs as trusted code (only that call: the script stays blocked).
 */
import { DefenseInDepthBox } from "just-bash";

export function hostCall<T>(run: () => T | Promise<T>): Promise<T> {
  return DefenseInDepthBox.runTrustedAsync(async () => run());
}
