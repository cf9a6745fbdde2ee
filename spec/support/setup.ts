// Mocha root hooks: loaded once before every spec (see .mocharc.json).
import 'reflect-metadata';

// Specs speak through real sockets; a stray rejection would otherwise only print a warning.
process.on('unhandledRejection', (err) => {
  throw err;
});
