// @ts-check
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'certs/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
      eqeqeq: ['error', 'always'],
    },
  },
  {
    // Postern's run-time inversify is the one-file bundle behind lib/vendor/inversify.ts (import time, issue 11).
    files: ['lib/**/*.ts'],
    ignores: ['lib/vendor/inversify.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        { paths: [{ name: 'inversify', allowTypeImports: true, message: "import values from lib/vendor/inversify.js ('import type' from 'inversify' is fine)" }] },
      ],
    },
  },
);
