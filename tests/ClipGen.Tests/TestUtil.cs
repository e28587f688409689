using ClipGen.Checkpoints;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ClipGen.Tests;

public static class TestUtil
{
    /// <summary>Reads a safetensors file of the fixtures into named tensors.</summary>
    public static StateDict Read(string path) => CheckpointLoader.ReadStateDict(path);

    /// <summary>The fixtures' tolerance: max |diff| ≤ 1e-4·max(1, max|ref|). Returns the max |diff|.</summary>
    public static double AssertClose(Tensor reference, Tensor actual, string what, double rel = 1e-4)
    {
        Assert.Equal(reference.shape, actual.shape);
        using var r = reference.to(ScalarType.Float64);
        using var a = actual.to(ScalarType.Float64).cpu();
        double maxDiff = (r - a).abs().max().item<double>();
        double maxRef = r.abs().max().item<double>();
        double tol = rel * Math.Max(1, maxRef);
        Assert.True(maxDiff <= tol, $"{what}: max |diff| {maxDiff:E3} exceeds {tol:E3} (max |ref| {maxRef:G4})");
        return maxDiff;
    }

    public static string TempDir()
    {
        var d = Path.Combine(Path.GetTempPath(), "clipgen-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(d);
        return d;
    }

    /// <summary>Runs the CLI in-process; returns (exit code, stdout, stderr).</summary>
    public static (int Code, string Out, string Err) Cli(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        var code = ClipGen.Cli.CliHost.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }
}
