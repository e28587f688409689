using ClipGen.Onnx;
using Xunit;
using Xunit.Abstractions;

namespace ClipGen.Tests.Onnx;

/// <summary>
/// Readable summaries of exported graphs (ops, inputs/outputs, initializers, metadata), committed under Onnx/Baselines.
/// Regenerate after an intended change with <c>CLIPGEN_UPDATE_BASELINES=1</c> and review the diff.
/// </summary>
public class GraphBaselineTests(ITestOutputHelper output)
{
    public static TheoryData<string> Models => new(["ViT-B-32", "RN50"]);

    [Theory]
    [MemberData(nameof(Models))]
    public void Full_graph_summary_matches_baseline(string name)
    {
        var info = Modeling.ModelRegistry.Get(name);
        var b = ClipOnnxExporter.BuildPlaceholderGraph(info.Spec, ClipOnnxKind.Full);
        var path = Path.Combine(TestUtil.TempDir(), "clip.onnx");
        b.Save(path);
        var actual = OnnxModelInfo.Load(path).Summary();
        var baseline = Path.Combine(Fixtures.RepoRoot, "tests", "ClipGen.Tests", "Onnx", "Baselines", name + ".full.txt");
        if (Environment.GetEnvironmentVariable("CLIPGEN_UPDATE_BASELINES") == "1")
        {
            File.WriteAllText(baseline, actual);
            output.WriteLine($"updated {baseline}");
            return;
        }
        Assert.True(File.Exists(baseline), $"{baseline} is missing; run the tests with CLIPGEN_UPDATE_BASELINES=1");
        var expectedLines = File.ReadAllText(baseline).Split('\n');
        var actualLines = actual.Split('\n');
        for (int i = 0; i < Math.Min(expectedLines.Length, actualLines.Length); i++)
            Assert.True(expectedLines[i] == actualLines[i], $"{name} summary line {i + 1}: expected '{expectedLines[i]}', got '{actualLines[i]}' (CLIPGEN_UPDATE_BASELINES=1 updates)");
        Assert.Equal(expectedLines.Length, actualLines.Length);
    }
}
