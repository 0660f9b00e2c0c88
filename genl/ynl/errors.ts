// The one error a spec problem throws: `path` names the place (e.g.
// `attribute-sets[node-attrs].attributes[node-type].enum`), the message says what is wrong there.
export class SpecError extends Error {
  constructor(public path: string, problem: string) {
    super(`${path || '(spec)'}: ${problem}`);
    this.name = 'SpecError';
  }
}
