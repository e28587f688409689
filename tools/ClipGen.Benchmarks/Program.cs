using ClipGen.Benchmarks;

// Each benchmark is a class with a static Run(string[] args) registered here by name.
var benchmarks = new Dictionary<string, Func<string[], int>>(StringComparer.Ordinal)
{
    ["checkpoint-load"] = CheckpointLoadBenchmark.Run,
    ["train"] = TrainingBenchmark.Run,
    ["backends"] = BackendBenchmark.Run,
    ["tokenizer"] = TokenizerBenchmark.Run,
    ["preprocess"] = PreprocessBenchmark.Run,
    ["gemm"] = GemmBenchmark.Run,
    ["compare"] = CompareBenchmark.Run,
    ["int8-variants"] = Int8VariantsBenchmark.Run,
    ["torch-vs-pytorch"] = TorchVsPyTorchBenchmark.Run,
    ["index"] = IndexBenchmark.Run,
    ["embed"] = EmbedBenchmark.Run,
    ["serve"] = ServeBenchmark.Run,
};

if (args.Length == 0 || !benchmarks.TryGetValue(args[0], out var run))
{
    Console.Error.WriteLine("usage: dotnet run -c Release --project tools/ClipGen.Benchmarks -- <benchmark> [options]");
    Console.Error.WriteLine("benchmarks: " + string.Join(", ", benchmarks.Keys.Order()));
    return 2;
}
// As the clipgen command does at start-up (docs/benchmarks.md): glibc keeps freed memory; CLIPGEN_MALLOC_RETAIN=0 turns it off.
var heap = ClipGen.NativeHeap.RetainFreedMemory();
if (args[0] != "compare" || !args.Contains("--child")) Console.Error.WriteLine($"native heap: {heap.Detail}");
return run(args[1..]);
