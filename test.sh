#!/usr/bin/env bash
# Builds the solution and runs every test project. Extra arguments go to 'dotnet test'.
set -euo pipefail
cd "$(dirname "$0")"
dotnet build ClipGen.sln -c Debug -nologo -v q
dotnet test ClipGen.sln -c Debug --no-build -nologo "$@"
