#!/usr/bin/env node
// Entry point of `npx hvsim`: loads the TypeScript sources through tsx, so no build step exists.
import { register } from "tsx/esm/api";

register();
const { main, installStdioGuards } = await import("./main.ts");
// A reader that goes away (`hvsim layout | head`) ends hvsim quietly; a full disk is one line, exit 1.
installStdioGuards();
process.exitCode = await main(process.argv.slice(2));
