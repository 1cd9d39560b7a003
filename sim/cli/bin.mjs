#!/usr/bin/env node
// Entry point of `npx hvsim`: loads the TypeScript sources through tsx, so no build step exists.
import { register } from "tsx/esm/api";

register();
const { main } = await import("./main.ts");
process.exitCode = await main(process.argv.slice(2));
