// Lint for the extension's TypeScript: eslint's and typescript-eslint's recommended rules and the project's
// naming. Formatting is prettier's job (`jlpm lint:check` runs both), so no rule here is about layout.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // generated from the Python models and palette (scripts/shapes.mjs, python -m nbflow.palette): checked there
  { ignores: ['lib/', 'node_modules/', 'src/*.generated.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['src/**/*.ts'],
    rules: {
      '@typescript-eslint/naming-convention': [
        'error',
        { selector: 'interface', format: ['PascalCase'], custom: { regex: '^I[A-Z]', match: true } }
      ],
      '@typescript-eslint/no-unused-vars': ['error', { args: 'none' }],
      eqeqeq: 'error',
      curly: 'error'
    }
  }
);
