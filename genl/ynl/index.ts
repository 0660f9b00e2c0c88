// genl/ynl: families described once, in YNL YAML specs (Documentation/netlink/specs style): the
// loader and model, kernel policies derived as ynl_gen_c does, Family construction, a
// compiled attribute codec and the TypeScript generator. See docs/ynl.md.
export * from './model';
export { SpecError, loadSpec, loadSpecFile } from './load';
export { type HalfPolicy, type OpPolicies, attrPolicy, opPolicies, setPolicy } from './policy';
export { type FamilyOptions, type Handlers, type OpHandlers, familyFromSpec, notifyEvent, readRequest } from './family';
export { readAttrs, writeAttrs } from './codec';
export { type GenOptions, type GenTarget, TARGETS, generate, renderTarget, withoutDocs } from './gen';
export { nameError, resolvePath } from './names';
