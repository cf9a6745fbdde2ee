import { expect } from 'chai';
import { MailStoreError } from '../../lib/contracts/mail-store.js';
import { checkPassword, hashPassword, UserTable, type UserRecord } from '../../lib/backends/shared/user-table.js';
import { deriveScramKeys } from '../../lib/protocol/sasl/scram-keys.js';

/** [code, message] of a rejected promise's MailStoreError. */
async function refusal(promise: Promise<unknown>): Promise<[string, string]> {
  try {
    await promise;
  } catch (err) {
    expect(err).to.be.instanceOf(MailStoreError);
    return [(err as MailStoreError).code, (err as MailStoreError).message];
  }
  expect.fail('expected a MailStoreError');
}

// Written against the mutants StrykerJS left alive in user-table.ts (README, "Scores (Stryker").
describe('shared UserTable: records, password forms and saving', () => {
  it('hashes into scrypt$N$r$p$salt$hash with Node\'s default cost, and checks only a well-formed string', async () => {
    const encoded = await hashPassword('pw');
    const [kind, n, r, p, salt, hash, ...rest] = encoded.split('$');
    expect([kind, n, r, p, rest]).to.deep.equal(['scrypt', '16384', '8', '1', []]);
    expect(Buffer.from(salt!, 'base64')).to.have.length(16);
    expect(Buffer.from(hash!, 'base64')).to.have.length(32);
    expect(await checkPassword('pw', encoded)).to.equal(true);
    expect(await checkPassword('wrong', encoded)).to.equal(false);
    expect(await checkPassword('pw', encoded.replace(/^scrypt/, 'bcrypt'))).to.equal(false);
    expect(await checkPassword('pw', `scrypt$16384$8$1$${salt}`)).to.equal(false);
    expect(await checkPassword('pw', 'scrypt$16384$8$1')).to.equal(false);
  });

  it('keeps exactly the credential forms its options ask for', async () => {
    const saved: UserRecord[][] = [];
    const persist = async (records: UserRecord[]): Promise<void> => {
      saved.push(structuredClone(records));
    };
    const hashedOnly = new UserTable({ hashPasswords: true, keepPlaintext: false, persist });
    await hashedOnly.add({ username: 'a', password: 'pw' });
    expect(Object.keys(saved[0]![0]!).sort()).to.deep.equal(['addresses', 'scram', 'scrypt', 'username']);
    expect(await hashedOnly.secretFor('a')).to.equal(undefined);
    expect(hashedOnly.keepsSecrets).to.equal(false);
    // SCRAM-SHA-256 keys beside every hash: the password's own, with the stored salt.
    const keys = (await hashedOnly.scramKeysFor('a'))!;
    expect(deriveScramKeys('pw', keys.salt, keys.iterations)).to.deep.equal(keys);
    expect(hashedOnly.keepsScramKeys).to.equal(true);
    expect(await hashedOnly.scramKeysFor('nobody')).to.equal(undefined);
    expect(await hashedOnly.verify('a', 'pw')).to.equal('a');
    expect(await hashedOnly.verify('a', 'nope')).to.equal(undefined);
    const both = new UserTable({ hashPasswords: true, keepPlaintext: true, persist });
    await both.add({ username: 'b', password: 'pw' });
    expect(Object.keys(saved[1]![0]!).sort()).to.deep.equal(['addresses', 'password', 'scram', 'scrypt', 'username']);
    expect(await both.secretFor('b')).to.equal('pw');
    expect(both.keepsSecrets).to.equal(true);
    const plain = new UserTable({ hashPasswords: false, keepPlaintext: false });
    await plain.add({ username: 'c', password: 'pw' });
    expect(await plain.secretFor('c')).to.equal('pw');
    expect(plain.keepsScramKeys, 'no hashes, no keys: the plaintext serves SCRAM').to.equal(false);
    // A record without keys (written by an earlier version) turns keepsScramKeys off until its password is set again.
    const legacy = new UserTable({ hashPasswords: true, keepPlaintext: false }, [{ username: 'old', addresses: [], scrypt: 'scrypt$1$1$1$AA==$AA==' }]);
    expect(legacy.keepsScramKeys).to.equal(false);
    await legacy.add({ username: 'old', password: 'new' });
    expect(legacy.keepsScramKeys).to.equal(true);
    legacy.replaceAll([{ username: 'old', addresses: [] }]);
    expect(legacy.keepsScramKeys).to.equal(false);
    expect(plain.keepsSecrets).to.equal(true);
    expect(await plain.verify('c', 'pw')).to.equal('c');
    expect(await plain.verify('c', 'pW')).to.equal(undefined);
    // A record loaded from disk with no credential at all never verifies.
    const bare = new UserTable({ hashPasswords: false, keepPlaintext: false }, [{ username: 'd', addresses: [] }]);
    expect(await bare.verify('d', '')).to.equal(undefined);
    expect(await bare.find('d')).to.equal('d');
  });

  it('lower-cases addresses, adds a username that is an address, and refuses a taken address and an empty name by text', async () => {
    const table = new UserTable({ hashPasswords: false, keepPlaintext: true });
    await table.add({ username: 'Erin@Example.test', password: 'pw', addresses: ['Z.Alias@Example.TEST', 'z.alias@example.test'] });
    expect(await table.findByAddress('erin@EXAMPLE.test')).to.equal('Erin@Example.test');
    expect(await table.findByAddress('z.alias@example.test')).to.equal('Erin@Example.test');
    expect(table.recordFor('Erin@Example.test')?.addresses).to.deep.equal(['erin@example.test', 'z.alias@example.test']);
    expect(await table.find('Z.ALIAS@example.test')).to.equal('Erin@Example.test');
    expect(await refusal(table.add({ username: 'frank', password: 'pw', addresses: ['Z.alias@example.test'] }))).to.deep.equal([
      'ALREADY_EXISTS',
      'address z.alias@example.test belongs to another user',
    ]);
    expect(await refusal(table.add({ username: '', password: 'pw' }))).to.deep.equal(['CANNOT', 'empty username']);
    // A username without @ is no address.
    await table.add({ username: 'Bob', password: 'pw' });
    expect(table.recordFor('Bob')?.addresses).to.deep.equal([]);
    expect(await table.findByAddress('bob')).to.equal(undefined);
    expect(await table.remove('Bob')).to.equal(true);
    // The owner of the addresses may be added again (a password change).
    await table.add({ username: 'Erin@Example.test', password: 'new', addresses: ['z.alias@example.test'] });
    expect(await table.verify('z.alias@example.test', 'new')).to.equal('Erin@Example.test');
    expect(await table.list()).to.deep.equal(['Erin@Example.test']);
  });

  it('lists sorted, removes once, and saves every change in order even after a failed save', async () => {
    const saves: string[][] = [];
    let failNext = false;
    const table = new UserTable({
      hashPasswords: false,
      keepPlaintext: true,
      persist: async (records) => {
        const names = records.map((r) => r.username);
        if (failNext) {
          failNext = false;
          throw new Error('disk full');
        }
        saves.push(names);
      },
    });
    await table.add({ username: 'zed', password: 'pw' });
    failNext = true;
    let failed: unknown;
    await table.add({ username: 'amy', password: 'pw' }).catch((err: unknown) => (failed = err));
    expect((failed as Error).message).to.equal('disk full');
    await Promise.all([table.add({ username: 'max', password: 'pw' }), table.remove('zed')]);
    expect(await table.list()).to.deep.equal(['amy', 'max']);
    expect(await table.remove('zed')).to.equal(false);
    await table.add({ username: 'bob', password: 'pw' });
    expect(await table.list()).to.deep.equal(['amy', 'bob', 'max']);
    // Each save writes the table as it is when its turn comes: the file always ends with the latest table.
    expect(saves).to.deep.equal([['zed'], ['amy', 'max'], ['amy', 'max'], ['amy', 'max', 'bob']]);
  });
});
