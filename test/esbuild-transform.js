// Jest transform: TypeScript 7 has no compiler API (ts-jest cannot run), so esbuild strips types.
// Type checking is a separate step (`tsc -p .`, part of `npm test`).
'use strict';
const { transformSync } = require('esbuild');
const crypto = require('crypto');
const pkg = require('esbuild/package.json');

module.exports = {
  process(src, file) {
    const out = transformSync(src, {
      loader: file.endsWith('.ts') ? 'ts' : 'js', format: 'cjs', target: 'node20',
      sourcemap: 'both', sourcefile: file,
    });
    return { code: out.code, map: out.map };
  },
  // The key must include `instrument`, or --coverage reuses uninstrumented output.
  getCacheKey(src, file, opts) {
    return crypto.createHash('sha1')
      .update(src).update(file).update(pkg.version).update(String(opts && opts.instrument))
      .digest('hex');
  },
};
