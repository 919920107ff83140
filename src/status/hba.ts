// The judgement of hba rules lives with the pg_hba module (the install warns by it, the
// plaintext_sessions module decides by it); status reads it from there.
export * from '../hba/plain-rules.js';
