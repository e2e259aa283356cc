#!/usr/bin/env node
// The `sdkit` command (see `sdkit --help` and docs/cli.md): runs the compiled entry.
import '../dist/bin.js';
