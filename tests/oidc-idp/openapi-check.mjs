// Validates an OpenAPI document against the OpenAPI specification's own schema (3.0 or 3.1,
// by its `openapi` field) with @apidevtools/swagger-parser. Run by tests/http/openapi.rs:
//
//   node openapi-check.mjs <file.json>
//
// Prints `VALID <version> <paths>` and exits 0, or the validation errors and exits 1.

import SwaggerParser from '@apidevtools/swagger-parser';

try {
  const api = await SwaggerParser.validate(process.argv[2]);
  process.stdout.write(`VALID ${api.openapi} ${Object.keys(api.paths).length}\n`);
} catch (e) {
  process.stderr.write(`${e.message}\n`);
  process.exit(1);
}
