// attrs/: netlink TLV attributes encoded exactly as the kernel does, read in place, and validated
// against policy tables with the kernel's errno and extended-ACK semantics.
export * from './consts';
export * as errno from './errno';
export { errnoName, strerror } from './errno';
export * from './writer';
export * from './reader';
export * from './policy';
export * from './extack';
export * from './validate';
export * from './policy-dump';
