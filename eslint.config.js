// Lint: typescript-eslint's recommended rules everywhere, plus the determinism rule for the
// simulation core. Everything under sim/ except the CLI (sim/cli), the adapters that talk to
// real processes (sim/targets, sim/peers) must not read wall-clock time or unseeded
// randomness: time comes from the virtual clock, randomness from the bench's seeded RNG.
import tseslint from "typescript-eslint";

export const DETERMINISM_EXEMPT = ["sim/cli/**", "sim/targets/**", "sim/peers/**"];

const timeAndRandomGlobals = [
  "setTimeout", "setInterval", "setImmediate", "clearTimeout", "clearInterval", "clearImmediate",
  "queueMicrotask", "performance", "crypto", "Date",
].map((name) => ({ name, message: `${name} reads wall-clock time or unseeded randomness; use the virtual clock / bench RNG.` }));

export const determinismRules = {
  "no-restricted-globals": ["error", ...timeAndRandomGlobals],
  "no-restricted-properties": [
    "error",
    { object: "Date", property: "now", message: "Wall-clock time: use the virtual clock (clock.now)." },
    { object: "Math", property: "random", message: "Unseeded randomness: use the bench's seeded RNG." },
    { object: "performance", property: "now", message: "Wall-clock time: use the virtual clock." },
    { object: "process", property: "hrtime", message: "Wall-clock time: use the virtual clock." },
    { object: "process", property: "uptime", message: "Wall-clock time: use the virtual clock." },
    { object: "crypto", property: "randomUUID", message: "Unseeded randomness: use the bench's seeded RNG." },
    { object: "crypto", property: "randomBytes", message: "Unseeded randomness: use the bench's seeded RNG." },
    { object: "crypto", property: "getRandomValues", message: "Unseeded randomness: use the bench's seeded RNG." },
  ],
  "no-restricted-syntax": [
    "error",
    { selector: "NewExpression[callee.name='Date']", message: "Wall-clock time: use the virtual clock." },
  ],
  "no-restricted-imports": [
    "error",
    {
      paths: [
        { name: "node:timers", message: "Timers run on wall-clock time: schedule clock events." },
        { name: "timers", message: "Timers run on wall-clock time: schedule clock events." },
        { name: "node:timers/promises", message: "Timers run on wall-clock time: schedule clock events." },
        { name: "timers/promises", message: "Timers run on wall-clock time: schedule clock events." },
        { name: "node:perf_hooks", message: "Wall-clock time: use the virtual clock." },
        { name: "perf_hooks", message: "Wall-clock time: use the virtual clock." },
        { name: "node:crypto", importNames: ["randomBytes", "randomUUID", "randomInt", "randomFill", "randomFillSync", "getRandomValues", "webcrypto"], message: "Unseeded randomness: use the bench's seeded RNG." },
        { name: "crypto", importNames: ["randomBytes", "randomUUID", "randomInt", "randomFill", "randomFillSync", "getRandomValues", "webcrypto"], message: "Unseeded randomness: use the bench's seeded RNG." },
      ],
    },
  ],
};

export default tseslint.config(
  { ignores: ["node_modules/**", "coverage/**", "reports/**", ".cache/**", "**/*.d.ts"] },
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-explicit-any": "off",
    },
  },
  { files: ["sim/**/*.ts"], ignores: DETERMINISM_EXEMPT, rules: determinismRules },
);
