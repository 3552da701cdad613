// Package config holds jwtgate's configuration schema (SPEC §2): the YAML
// types, their defaults, strict loading and validation that reports every
// problem with its YAML path.
package config
