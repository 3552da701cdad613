// Package config holds jwtgate's configuration schema (SPEC §2): the YAML
// types, their defaults, strict loading and validation that reports every
// problem with its YAML path.
//
// Load (or Parse) runs these steps:
//
//  1. Decode the file into a YAML node tree and walk it alongside the Go
//     types, reporting every syntax error, unknown key, duplicate key and
//     type mismatch by YAML path (yaml v3 itself only gives line numbers).
//     If there is any, stop here: semantic checks need a decoded file.
//  2. Decode strictly into Config, apply the defaults (the Default*
//     constants), lowercase hosts and uppercase methods, and resolve
//     relative file paths against the config file's directory.
//  3. Resolve what the gateway needs at run time, the only I/O besides
//     reading the file: HMAC secrets from secret_env/secret_file, PEM
//     public keys, the audit chain key. Parse trusted proxies and compile
//     claim regexps. Apply every semantic rule, collecting all problems.
//
// Problems are FieldErrors ("routes[2].auth.mode: ...") in document order;
// errors fail the load (an *Error), warnings do not (Config.Warnings).
// No message ever contains a secret's value.
package config
