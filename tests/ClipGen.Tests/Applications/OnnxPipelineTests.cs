using ClipGen.Applications;
using ClipGen.Backends;
using ClipGen.Modeling;
using Xunit;

namespace ClipGen.Tests.Applications;

/// <summary>
/// The ClipGen.Core path: an exported folder opened by <see cref="ClipPipeline.Open"/> (no spec, no checkpoint, no TorchSharp
/// types in the calls) classifies and embeds like the TorchSharp pipeline over the same weights.
/// </summary>
public class OnnxPipelineTests
{
    [Fact]
    public void Open_export_folder_classifies_and_embeds_like_the_torch_pipeline()
    {
        var dir = Directory.CreateTempSubdirectory("clipgen-open-").FullName;
        try
        {
            using (var model = ClipModelFactory.Load("tiny-vit", AppFixtures.Weights("openai/tiny-vit")))
                ((Models.TinyVit)model).ExportOnnx(dir);
            string[] labels = ["a coffee mug", "a horse", "a diagram"];

            using var slim = ClipPipeline.Open(dir, new ClipPipelineOptions { VocabularyPath = AppFixtures.Vocab });
            Assert.Equal(BackendKind.Onnx, slim.Backend.Kind);
            Assert.Equal("tiny-vit", slim.Spec.Name);
            using var torchPipeline = AppFixtures.Pipeline("openai/tiny-vit");

            ArrayTensor<float> a = slim.EmbedImages(AppFixtures.Images), b = torchPipeline.EmbedImages(AppFixtures.Images);
            Assert.Equal(b.Shape, a.Shape);
            for (int i = 0; i < a.Data.Length; i++) Assert.True(Math.Abs(a.Data[i] - b.Data[i]) < 1e-5, $"image embedding value {i}: {a.Data[i]} vs {b.Data[i]}");

            var ta = slim.EmbedTexts(labels).Data;
            var tb = torchPipeline.EmbedTexts(labels).Data;
            for (int i = 0; i < ta.Length; i++) Assert.True(Math.Abs(ta[i] - tb[i]) < 1e-5, $"text embedding value {i}: {ta[i]} vs {tb[i]}");

            using var slimClassifier = slim.CreateClassifier(labels);
            using var torchClassifier = torchPipeline.CreateClassifier(labels);
            var pa = slimClassifier.Classify(AppFixtures.Images);
            var pb = torchClassifier.Classify(AppFixtures.Images);
            for (int i = 0; i < pa.Count; i++)
            {
                Assert.Equal(pb[i].Top.Label, pa[i].Top.Label);
                for (int c = 0; c < labels.Length; c++) Assert.Equal(pb[i].Probabilities[c], pa[i].Probabilities[c], 5);
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Open_refuses_a_folder_without_an_export()
    {
        var dir = Directory.CreateTempSubdirectory("clipgen-open-").FullName;
        try
        {
            var e = Assert.Throws<ClipGenException>(() => ClipPipeline.Open(dir));
            Assert.Contains("image.onnx", e.Message);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
