// The package version, read once from package.json by the bundler.
import pkg from '../package.json';

export const version: string = pkg.version;
