#!/usr/bin/env node
// Entry point of `npx hvsim`: loads the TypeScript sources through tsx, so no build step exists.
import { register } from "tsx/esm/api";

// A reader that goes away (`hvsim run ... | head`) is not an error.
for (const s of [process.stdout, process.stderr]) {
  s.on("error", (e) => {
    if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw e;
  });
}

register();
const { main } = await import("./main.ts");
process.exitCode = await main(process.argv.slice(2));
