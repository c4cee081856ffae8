#!/usr/bin/env node
// The CLI's code is in deepagents-backends (its "./cli" export, dist/cli/bin.js); this package
// only depends on everything the CLI loads, which deepagents-backends leaves to optional peers.
import "deepagents-backends/cli";
