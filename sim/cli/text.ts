// Small wording helpers shared by the commands' output.

/** "1 finding", "2 findings", "0 findings"; `many` for irregular plurals. */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
