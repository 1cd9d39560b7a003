// Not a well-formed suite: its reference is not one of its cases.
export const suite = { name: "bad", reference: "missing", cases: { a: () => {} } };
