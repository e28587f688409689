#!/usr/bin/env bash
# Package consumer tests (issue 15): packs ClipGen, ClipGen.Core, ClipGen.Spec and ClipGen.Cli once to a temporary feed and
# uses them the way a user outside the repository does:
#   1. a console project with <PackageReference Include="ClipGen" Version="*-*" /> and <ClipGenSpec Include="specs/*.yaml" />
#      compiles its own specs (one standalone, one that extends a built-in), checks ParameterCount, and runs its typed model
#      against the tiny reference fixture;
#   2. a copy of it with a misspelled activation fails `dotnet build` at that YAML line and column;
#   3. a project that references ClipGen.Core alone has no TorchSharp in its closure and classifies an image through an ONNX
#      export made by the repository's CLI, with the CLI's probabilities;
#   4. `dotnet tool install ClipGen.Cli --tool-path … --add-source feed --prerelease` and `clipgen models`.
# Usage: tests/packaging/run.sh [--trx FILE] [--configuration Debug|Release]
# Fixtures: $CLIPGEN_FIXTURES, else ../shared/fixtures. Packages are versioned 0.0.0-ci.<time>, so that they never collide with
# a release in the NuGet cache, and are removed from the cache at the end; everything else (TorchSharp, ONNX Runtime, …) comes
# from the machine's NuGet cache. CLIPGEN_KEEP_PACKAGING=1 keeps the temporary folder.
set -uo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
trx=""
config="Debug"
while [ $# -gt 0 ]; do
  case "$1" in
    --trx) trx="$2"; shift 2 ;;
    --configuration|-c) config="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
fixtures="${CLIPGEN_FIXTURES:-$repo/../shared/fixtures}"
if ! fixtures="$(cd "$fixtures" 2>/dev/null && pwd)"; then echo "fixtures not found (set CLIPGEN_FIXTURES)" >&2; exit 2; fi
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
version="0.0.0-ci.$(date +%s)"
work="$(mktemp -d "${TMPDIR:-/tmp}/clipgen-packaging-XXXXXX")"
feed="$work/feed"
packages="${NUGET_PACKAGES:-$HOME/.nuget/packages}"
log="$work/log"
mkdir -p "$log"
cleanup() {
  for id in clipgen clipgen.core clipgen.spec clipgen.cli clipgen.cli.linux-x64; do rm -rf "$packages/$id/$version"; done
  if [ -z "${CLIPGEN_KEEP_PACKAGING:-}" ]; then rm -rf "$work"; else echo "kept $work"; fi
}
trap cleanup EXIT

names=()
outcomes=()
messages=()
durations=()
case_start=0
begin() { case_start=$(date +%s); echo "== $1"; }
record() { # name outcome message
  names+=("$1"); outcomes+=("$2"); messages+=("$3"); durations+=($(( $(date +%s) - case_start )))
  echo "   $2: $1${3:+ ($3)}"
}

# ------------------------------------------------------------------ pack once
begin "pack ($config, $version)"
pack_ok=1
for p in src/ClipGen.Spec src/ClipGen.Core src/ClipGen src/ClipGen.Cli; do
  name="$(basename "$p")"
  if ! dotnet pack "$repo/$p" -c "$config" -o "$feed" -p:Version="$version" >"$log/pack-$name.txt" 2>&1; then
    pack_ok=0
    tail -20 "$log/pack-$name.txt"
  fi
done
if [ $pack_ok -eq 1 ]; then
  record "packaging: pack" Passed "$(cd "$feed" && ls -s --block-size=K ./*.nupkg | tr '\n' ' ')"
else
  record "packaging: pack" Failed "dotnet pack failed"
fi

# A user's NuGet.config: the feed for ClipGen's packages, nuget.org for everything else (with source mapping, so that no
# package of the same name elsewhere is taken).
nuget_config() {
  cat >"$1/NuGet.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="clipgen-feed" value="$feed" />
    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
  </packageSources>
  <packageSourceMapping>
    <packageSource key="clipgen-feed"><package pattern="ClipGen" /><package pattern="ClipGen.*" /></packageSource>
    <packageSource key="nuget.org"><package pattern="*" /></packageSource>
  </packageSourceMapping>
</configuration>
XML
}
# MSBuild must not find Directory.Build.* files above the temporary folder.
echo '<Project />' >"$work/Directory.Build.props"
echo '<Project />' >"$work/Directory.Build.targets"

# ------------------------------------------------------------------ 1. a project with its own specs
consumer="$work/consumer"
mkdir -p "$consumer/specs"
nuget_config "$consumer"
cat >"$consumer/Consumer.csproj" <<'XML'
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFramework>net10.0</TargetFramework>
    <Nullable>enable</Nullable>
    <ImplicitUsings>enable</ImplicitUsings>
    <RootNamespace>Consumer</RootNamespace>
  </PropertyGroup>
  <ItemGroup>
    <PackageReference Include="ClipGen" Version="*-*" />
    <ClipGenSpec Include="specs/*.yaml" />
  </ItemGroup>
</Project>
XML
# Standalone: the tiny OpenAI ViT of the fixtures (random weights).
cat >"$consumer/specs/my-tiny-vit.yaml" <<'YAML'
name: my-tiny-vit
class_name: MyTinyVit
embed_dim: 32
activation: quick_gelu
init_logit_scale: 2.6592600369262695
vision:
  image_size: 32
  patch_size: 8
  layers: 2
  width: 64
  head_width: 64
text:
  context_length: 77
  vocab_size: 49408
  width: 8
  heads: 2
  layers: 2
tokenizer:
  kind: clip_bpe
preprocess:
  mean: [0.48145466, 0.4578275, 0.40821073]
  std: [0.26862954, 0.26130258, 0.27577711]
  interpolation: bicubic
  resize_mode: shortest
YAML
# Extends a built-in: ViT-B-32 with bilinear resizing (the weights, hence ParameterCount, are ViT-B-32's).
cat >"$consumer/specs/my-b32.yaml" <<'YAML'
name: my-b32-bilinear
class_name: MyB32
extends: ViT-B-32
preprocess:
  interpolation: bilinear
YAML
cat >"$consumer/Program.cs" <<'CS'
using ClipGen.Checkpoints;
using ClipGen.Modeling;
using Consumer.Models;
using static TorchSharp.torch;

// args: <fixtures>/reference/openai/tiny-vit
var dir = args[0];
using var model = new MyTinyVit();
long counted = model.parameters().Sum(p => p.numel());
Console.WriteLine($"MyTinyVit.ParameterCount={MyTinyVit.ParameterCount} module={counted}");
Console.WriteLine($"MyB32.ParameterCount={MyB32.ParameterCount} image_size={MyB32.ImageSize} interpolation={MyB32.ModelSpec.Preprocess.Interpolation}");

using var loaded = (MyTinyVit)ClipModelFactory.Load(MyTinyVit.ModelSpec, Path.Combine(dir, "model.safetensors"));
Tensor Read(string file, string name)
{
    using var source = CheckpointReader.Open(Path.Combine(dir, file));
    return source.Entries.Single(e => e.Name == name).ToTensor();
}
using var pixels = Read("inputs.safetensors", "pixel_values");
using var ids = Read("inputs.safetensors", "input_ids");
double worst = 0;
using (no_grad())
{
    foreach (var (name, actual) in new[] { ("image_features", loaded.EncodeImage(pixels)), ("text_features", loaded.EncodeText(ids)) })
    {
        using var expected = Read("outputs.safetensors", name);
        using (actual)
        {
            double diff = (actual - expected).abs().max().item<float>();
            double tolerance = 1e-4 * Math.Max(1, expected.abs().max().item<float>());
            Console.WriteLine($"{name}: max |diff| {diff:E2} (tolerance {tolerance:E2})");
            worst = Math.Max(worst, diff / tolerance);
        }
    }
}
Console.WriteLine(worst <= 1 ? "reference: ok" : "reference: MISMATCH");
return worst <= 1 ? 0 : 1;
CS

begin "consumer"
if (cd "$consumer" && dotnet build -c Release >"$log/consumer-build.txt" 2>&1); then
  record "packaging: consumer compiles its own specs" Passed ""
  out="$(cd "$consumer" && dotnet bin/Release/net10.0/Consumer.dll "$fixtures/reference/openai/tiny-vit" 2>&1)"
  rc=$?
  echo "$out" | sed 's/^/   | /'
  # The expected count is the fixture's element count (OpenAI's state_dict of this model holds parameters only).
  expected_tiny="$(python3 - "$fixtures/reference/openai/tiny-vit/model.safetensors" <<'PY'
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    h = json.loads(f.read(n))
total = 0
for k, v in h.items():
    if k == "__metadata__":
        continue
    c = 1
    for d in v["shape"]:
        c *= d
    total += c
print(total)
PY
)"
  if echo "$out" | grep -q "MyTinyVit.ParameterCount=$expected_tiny module=$expected_tiny"; then
    record "packaging: new MyTinyVit() has the fixture's ParameterCount ($expected_tiny)" Passed ""
  else
    record "packaging: new MyTinyVit() has the fixture's ParameterCount ($expected_tiny)" Failed "$(echo "$out" | head -1)"
  fi
  # open_clip's ViT-B-32 has 151,277,313 parameters.
  if echo "$out" | grep -q "MyB32.ParameterCount=151277313 image_size=224 interpolation=Bilinear"; then
    record "packaging: a spec that extends the built-in ViT-B-32" Passed ""
  else
    record "packaging: a spec that extends the built-in ViT-B-32" Failed "$(echo "$out" | sed -n 2p)"
  fi
  if [ $rc -eq 0 ] && echo "$out" | grep -q "reference: ok"; then
    record "packaging: the typed model matches the tiny reference fixture within 1e-4*max(1,|ref|)" Passed ""
  else
    record "packaging: the typed model matches the tiny reference fixture within 1e-4*max(1,|ref|)" Failed "exit $rc"
  fi
else
  tail -30 "$log/consumer-build.txt"
  record "packaging: consumer compiles its own specs" Failed "dotnet build failed"
fi

# ------------------------------------------------------------------ 2. a misspelled activation fails the build at its line and column
begin "broken spec"
broken="$work/consumer-broken"
mkdir -p "$broken"
cp -r "$consumer/specs" "$consumer/Consumer.csproj" "$consumer/Program.cs" "$broken/"
nuget_config "$broken"
# Line 4 is 'activation: quick_gelo'; its value starts at column 13.
sed -i 's/^activation: quick_gelu$/activation: quick_gelo/' "$broken/specs/my-tiny-vit.yaml"
(cd "$broken" && dotnet build -c Release >"$log/broken-build.txt" 2>&1)
rc=$?
if [ $rc -ne 0 ] && grep -Eq 'specs/my-tiny-vit\.yaml\(4,13\): error CLIPGEN[0-9]{3}: .*quick_gelo' "$log/broken-build.txt"; then
  record "packaging: a misspelled activation fails the build at my-tiny-vit.yaml(4,13)" Passed "$(grep -Eo 'my-tiny-vit\.yaml\(4,13\): error CLIPGEN[0-9]+' "$log/broken-build.txt" | head -1)"
else
  record "packaging: a misspelled activation fails the build at my-tiny-vit.yaml(4,13)" Failed "exit $rc; $(grep -E 'error' "$log/broken-build.txt" | head -2)"
fi

# ------------------------------------------------------------------ 3. the slim runtime classifies through an exported model
begin "slim consumer"
cli_dll="$repo/src/ClipGen.Cli/bin/$config/net10.0/ClipGen.Cli.dll"
[ -f "$cli_dll" ] || dotnet build "$repo/src/ClipGen.Cli" -c "$config" >"$log/cli-build.txt" 2>&1
spec="$repo/tests/ClipGen.Tests/specs/tiny-vit.yaml"
weights="$fixtures/reference/openai/tiny-vit/model.safetensors"
vocab="$fixtures/vocab/bpe_simple_vocab_16e6.txt.gz"
image="$fixtures/images/CLIP.png"
labels="a diagram,a dog,a cat"
export_dir="$work/export"
dotnet "$cli_dll" export-onnx --model "$spec" --weights "$weights" --output "$export_dir" >"$log/export.txt" 2>&1 || tail -5 "$log/export.txt"
dotnet "$cli_dll" classify --model "$spec" --weights "$weights" --vocab "$vocab" --image "$image" --labels "$labels" --json \
  >"$work/cli.json" 2>"$log/cli-classify.txt" || tail -5 "$log/cli-classify.txt"
slim="$work/slim"
mkdir -p "$slim"
nuget_config "$slim"
cat >"$slim/Slim.csproj" <<'XML'
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFramework>net10.0</TargetFramework>
    <Nullable>enable</Nullable>
    <ImplicitUsings>enable</ImplicitUsings>
  </PropertyGroup>
  <ItemGroup>
    <PackageReference Include="ClipGen.Core" Version="*-*" />
  </ItemGroup>
</Project>
XML
cat >"$slim/Program.cs" <<'CS'
using System.Globalization;
using ClipGen.Applications;

// args: <export folder> <vocab> <image> <labels, comma-separated>
using var pipeline = ClipPipeline.Open(args[0], new ClipPipelineOptions { VocabularyPath = args[1] });
using var classifier = pipeline.CreateClassifier(args[3].Split(','));
var result = classifier.Classify(args[2]);
foreach (var (label, p) in result.Labels.Zip(result.Probabilities))
    Console.WriteLine(label + "\t" + p.ToString("R", CultureInfo.InvariantCulture));
CS
if (cd "$slim" && dotnet build -c Release >"$log/slim-build.txt" 2>&1); then
  (cd "$slim" && dotnet list package --include-transitive >"$log/slim-closure.txt" 2>&1)
  if grep -qi torch "$log/slim-closure.txt"; then
    record "packaging: ClipGen.Core's closure has no TorchSharp" Failed "$(grep -i torch "$log/slim-closure.txt" | head -3 | tr -s ' ')"
  elif grep -q 'ClipGen.Core' "$log/slim-closure.txt"; then
    record "packaging: ClipGen.Core's closure has no TorchSharp" Passed ""
  else
    record "packaging: ClipGen.Core's closure has no TorchSharp" Failed "dotnet list package printed no ClipGen.Core"
  fi
  (cd "$slim" && dotnet bin/Release/net10.0/Slim.dll "$export_dir" "$vocab" "$image" "$labels" >"$work/slim.tsv" 2>&1)
  rc=$?
  sed 's/^/   | /' "$work/slim.tsv"
  # clipgen classify --json against the slim consumer's lines: the same labels, probabilities within 1e-4.
  verdict="$(python3 - "$work/cli.json" "$work/slim.tsv" <<'PY'
import json, sys
try:
    cli = json.load(open(sys.argv[1]))[0]["probs"]
    slim = {}
    for line in open(sys.argv[2]).read().strip().splitlines():
        label, p = line.split("\t")
        slim[label] = float(p)
except Exception as e:
    print("unreadable output: %r" % e)
    sys.exit()
if set(slim) != set(cli):
    print("labels differ: %s vs %s" % (sorted(slim), sorted(cli)))
    sys.exit()
worst = max(abs(slim[l] - float(cli[l])) for l in slim)
print(("ok %.2e" if worst <= 1e-4 else "differ %.2e") % worst)
PY
)"
  if [ $rc -eq 0 ] && [[ "$verdict" == ok* ]]; then
    record "packaging: the slim consumer classifies through clipgen export-onnx like clipgen classify" Passed "max |diff| ${verdict#ok }"
  else
    record "packaging: the slim consumer classifies through clipgen export-onnx like clipgen classify" Failed "exit $rc; $verdict"
  fi
else
  tail -30 "$log/slim-build.txt"
  record "packaging: the slim consumer builds" Failed "dotnet build failed"
fi

# ------------------------------------------------------------------ 4. the tool
begin "tool"
if (cd "$work" && dotnet tool install ClipGen.Cli --tool-path "$work/t" --add-source "$feed" --prerelease >"$log/tool-install.txt" 2>&1) \
   && "$work/t/clipgen" models >"$log/tool-models.txt" 2>&1 && grep -q 'ViT-B-32' "$log/tool-models.txt"; then
  record "packaging: dotnet tool install ClipGen.Cli, then clipgen models" Passed "$(grep -o 'ClipGen.Cli.*version[^)]*' "$log/tool-install.txt" | head -1)"
  # The tool loads TorchSharp here (Debian 12: the packed libLibTorchSharp.so must carry the GLIBCXX patch) and agrees with
  # the repository's CLI.
  begin "tool classify"
  if "$work/t/clipgen" classify --model "$spec" --weights "$weights" --vocab "$vocab" --image "$image" --labels "$labels" --json \
       >"$work/tool.json" 2>"$log/tool-classify.txt" && cmp -s "$work/tool.json" "$work/cli.json"; then
    record "packaging: the installed clipgen classifies with TorchSharp like the repository's" Passed ""
  else
    tail -5 "$log/tool-classify.txt"
    record "packaging: the installed clipgen classifies with TorchSharp like the repository's" Failed "$(head -c 200 "$work/tool.json")"
  fi
else
  tail -10 "$log/tool-install.txt" "$log/tool-models.txt" 2>/dev/null
  record "packaging: dotnet tool install ClipGen.Cli, then clipgen models" Failed "see the output above"
fi

# ------------------------------------------------------------------ totals, and a TRX that .ci/run counts
passed=0
failed=0
for o in "${outcomes[@]}"; do
  if [ "$o" = Passed ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo "packaging: $passed passed, $failed failed"
xml() { printf '%s' "$1" | sed 's/&/\&amp;/g; s/</\&lt;/g; s/>/\&gt;/g; s/"/\&quot;/g'; }
if [ -n "$trx" ]; then
  mkdir -p "$(dirname "$trx")"
  {
    echo '<?xml version="1.0" encoding="utf-8"?>'
    echo '<TestRun xmlns="http://microsoft.com/schemas/VisualStudio/TeamTest/2010" name="packaging">'
    echo "  <ResultSummary outcome=\"$([ $failed -eq 0 ] && echo Completed || echo Failed)\">"
    echo "    <Counters total=\"${#names[@]}\" executed=\"${#names[@]}\" passed=\"$passed\" failed=\"$failed\" />"
    echo '  </ResultSummary>'
    echo '  <Results>'
    for i in "${!names[@]}"; do
      echo "    <UnitTestResult testName=\"$(xml "${names[$i]}")\" outcome=\"${outcomes[$i]}\" duration=\"PT${durations[$i]}S\"><Output><StdOut>$(xml "${messages[$i]}")</StdOut></Output></UnitTestResult>"
    done
    echo '  </Results>'
    echo '</TestRun>'
  } >"$trx"
fi
[ $failed -eq 0 ]
