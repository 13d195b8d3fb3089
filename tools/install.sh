#!/usr/bin/env bash
# Installs Engram as a .NET tool, so `engram` runs from any folder (0.1 s a command instead of the
# 5 s of `dotnet run`). Packs src/Engram into a local folder and installs the tool from there, or
# updates it when it is installed already. Needs only the .NET 10 SDK; nothing is downloaded.
#
#   tools/install.sh                      # global: ~/.dotnet/tools/engram
#   tools/install.sh --tool-path DIR      # into DIR instead (DIR/engram)
#
# Options: --tool-path DIR, --packages DIR (where the package goes; default artifacts/packages),
# --configuration C (default Release), --no-build (pack what the last build left).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
packages="$repo/artifacts/packages"
configuration=Release
tool_path=""
no_build=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --tool-path) tool_path="$2"; shift 2 ;;
    --packages) packages="$2"; shift 2 ;;
    --configuration|-c) configuration="$2"; shift 2 ;;
    --no-build) no_build="--no-build"; shift ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option '$1' (see --help)" >&2; exit 1 ;;
  esac
done

# A version of its own for every pack: NuGet caches packages by id and version, so reinstalling
# 0.1.0 from a fresh pack would silently install the cached copy of an older build.
base="$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' "$repo/Directory.Build.props" | head -n 1)"
version="${base:-0.1.0}-local.$(date -u +%Y%m%d%H%M%S)"

mkdir -p "$packages"
echo "Packing Engram $version into $packages ..."
dotnet pack "$repo/src/Engram/Engram.csproj" -c "$configuration" $no_build -o "$packages" -p:PackageVersion="$version" -nologo -v quiet -clp:ErrorsOnly

# Only the local folder as a source: the tool package carries everything it needs, and an
# unrelated package of the same name elsewhere can never be picked.
config="$packages/nuget.config"
cat > "$config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="engram-local" value="$packages" />
  </packageSources>
</configuration>
XML

if [[ -n "$tool_path" ]]; then
  where=(--tool-path "$tool_path")
  listed="$(dotnet tool list --tool-path "$tool_path" 2>/dev/null || true)"
else
  where=(--global)
  listed="$(dotnet tool list --global 2>/dev/null || true)"
fi
if grep -qiE '^engram[[:space:]]' <<<"$listed"; then
  dotnet tool update "${where[@]}" --configfile "$config" --version "$version" Engram
else
  dotnet tool install "${where[@]}" --configfile "$config" --version "$version" Engram
fi

if [[ -z "$tool_path" ]]; then
  tools="$HOME/.dotnet/tools"
  case ":$PATH:" in
    *":$tools:"*) echo "Done: run 'engram --help'." ;;
    *) echo "Done. Put the tools folder on PATH (add this line to ~/.bashrc or ~/.profile), then run 'engram --help':"
       echo "  export PATH=\"\$PATH:$tools\"" ;;
  esac
fi
