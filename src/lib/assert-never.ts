/** Exhaustiveness: a switch over a union that reaches this has missed a case at compile time. */
export function assertNever(value: never): never {
  throw new Error(`unexpected value ${JSON.stringify(value)}`);
}
