// The TypeScript types of nbflow's JSON shapes and request bodies, generated from their JSON schema by
// json-schema-to-typescript:
//   python -m nbflow.shapes | node scripts/shapes.mjs > src/shapes.generated.ts
// (run in this folder, with the nbflow of this checkout importable). tests/test_shapes.py fails when the committed
// file differs from what this prints.
import { compile } from 'json-schema-to-typescript';

const chunks = [];
for await (const chunk of process.stdin) {
  chunks.push(chunk);
}
const schema = JSON.parse(Buffer.concat(chunks).toString('utf8'));

const banner = `/**
 * Generated from nbflow/shapes.py by scripts/shapes.mjs: do not edit. Regenerate with
 *   python -m nbflow.shapes | node scripts/shapes.mjs > src/shapes.generated.ts
 */`;

const types = await compile(schema, 'NbflowShapes', {
  additionalProperties: false,
  bannerComment: banner,
  style: { singleQuote: true, printWidth: 120, trailingComma: 'none', arrowParens: 'avoid' }
});
process.stdout.write(types);
