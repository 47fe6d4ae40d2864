// Package crypt encrypts and decrypts backup objects with age: recipients
// (age X25519 public keys, ssh-ed25519 and ssh-rsa public keys, or files
// listing them) and identities (age identity files, unencrypted OpenSSH
// private keys) are parsed here, and data is encrypted and decrypted as a
// stream, so memory does not grow with the size of an archive.
package crypt
