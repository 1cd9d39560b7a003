// The one test for "a program that can be run here", shared by every adapter that starts one.
import { accessSync, constants, statSync } from "node:fs";

/** True when `path` is a regular file the current user may execute. */
export function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
