/** Written into metadata.json; a test keeps it equal to package.json's version. */
export const GENERATOR = { name: 'compose-extensions', version: '0.1.0' } as const;
