using ClipGen.Backends;
using ClipGen.Demo;
using ClipGen.Imaging;
using ClipGen.Modeling;
using ClipGen.Models;
using ClipGen.Onnx;
using ClipGen.Training;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace ClipGen.Tests.Onnx;

/// <summary>
/// demo-tiny trained in the test: a CI-sized run of <c>clipgen demo</c>'s recipe (<see cref="Steps"/>; the full 10 epochs ×
/// 8,000 images take ~3 minutes, and <c>clipgen demo</c> itself reports the int8 accuracy of the full run). Trained weights,
/// unlike random ones, have the structured activations quantization meets in practice.
/// </summary>
public sealed class TrainedDemo : IDisposable
{
    public const int TrainSize = 3072, Epochs = 4, Batch = 128, HeldOut = 600, Seed = 1;
    public const int Steps = TrainSize / Batch * Epochs;

    public ClipModule Model { get; }
    public Tensor HeldOutPixels { get; }
    public int[] HeldOutLabels { get; }
    public Func<IReadOnlyList<string>, long[]> Tokenize { get; }

    public TrainedDemo()
    {
        torch.set_num_threads(Math.Max(1, Environment.ProcessorCount));
        torch.manual_seed(Seed);
        Model = new DemoTiny();
        var spec = DemoTiny.ModelSpec;
        var tokenizer = spec.CreateTokenizer();
        Tokenize = texts => tokenizer.EncodeBatch(texts, spec.Text.ContextLength);
        var train = new SyntheticShapes(TrainSize, spec.Vision.ImageSize, Seed, spec.Preprocess);
        var options = new TrainerOptions { Epochs = Epochs, BatchSize = Batch, LearningRate = 2e-3, WarmupSteps = 10, WeightDecay = 0.1, Seed = Seed };
        new ClipTrainer(Model, options, Tokenize).Train(train, Directory.CreateTempSubdirectory("clipgen-int8-demo-").FullName);
        Model.eval();

        var test = new SyntheticShapes(HeldOut, spec.Vision.ImageSize, Seed + 7777, spec.Preprocess);
        int per = 3 * spec.Vision.ImageSize * spec.Vision.ImageSize;
        var pixels = new float[HeldOut * per];
        HeldOutLabels = new int[HeldOut];
        for (int i = 0; i < HeldOut; i++)
        {
            test.LoadImage(i, pixels.AsSpan(i * per, per), null);
            HeldOutLabels[i] = SyntheticShapes.LabelIndex(test.Scene(i));
        }
        HeldOutPixels = TensorArrays.FromArray(pixels, [HeldOut, 3, spec.Vision.ImageSize, spec.Vision.ImageSize]);
    }

    public void Dispose()
    {
        HeldOutPixels.Dispose();
        Model.Dispose();
    }
}

public class Int8DemoTests(TrainedDemo demo, ITestOutputHelper output) : IClassFixture<TrainedDemo>
{
    static readonly string[] Templates = ["a picture of a {}.", "an image showing a {}.", "a {} on a plain background.", "this is a {}."];

    [Fact]
    public void Held_out_zero_shot_accuracy_stays_within_one_point_of_fp32()
    {
        using var fp32 = ClipBackends.Create(demo.Model, BackendKind.Onnx);
        using var int8 = ClipBackends.Create(demo.Model, BackendKind.Onnx, new ClipBackendOptions { Precision = OnnxPrecision.Int8 });
        double a = Evaluation.ZeroShotAccuracy(fp32, SyntheticShapes.Labels, Templates, demo.Tokenize, demo.HeldOutPixels, demo.HeldOutLabels);
        double b = Evaluation.ZeroShotAccuracy(int8, SyntheticShapes.Labels, Templates, demo.Tokenize, demo.HeldOutPixels, demo.HeldOutLabels);
        output.WriteLine($"demo-tiny after {TrainedDemo.Steps} steps: held-out zero-shot accuracy fp32 {a:P1}, int8 {b:P1} ({TrainedDemo.HeldOut} images, {SyntheticShapes.Labels.Count} classes)");
        // The model must have learned the task, or the comparison says nothing: chance is 1/12, these 96 steps reach about 42 %.
        Assert.True(a >= 0.3, $"the CI-sized training reached only {a:P1}");
        Assert.True(Math.Abs(a - b) <= 0.01, $"int8 {b:P1} vs fp32 {a:P1}");
    }

    [Fact]
    public void Real_images_held_out_images_and_prompts_keep_cosine_0_99()
    {
        using var fp32 = ClipBackends.Create(demo.Model, BackendKind.Onnx);
        using var int8 = ClipBackends.Create(demo.Model, BackendKind.Onnx, new ClipBackendOptions { Precision = OnnxPrecision.Int8 });
        using var scope = NewDisposeScope();
        var images = Directory.GetFiles(Fixtures.Path_("preprocess", "images")).Order(StringComparer.Ordinal).ToArray();
        Assert.NotEmpty(images);
        var real = DemoTiny.ModelSpec.CreatePreprocessor().PreprocessToTensor(images);
        var prompts = SyntheticShapes.Labels.SelectMany(l => Templates.Select(t => t.Replace("{}", l, StringComparison.Ordinal)))
            .Append("a photo of a cup of coffee").Append("a horse in a field").ToList();
        var ids = TensorArrays.FromArray(demo.Tokenize(prompts), [prompts.Count, DemoTiny.ModelSpec.Text.ContextLength]);
        foreach (var (what, a, b) in new[]
                 {
                     ($"{images.Length} real images", fp32.EncodeImage(real), int8.EncodeImage(real)),
                     ($"{TrainedDemo.HeldOut} held-out images", fp32.EncodeImage(demo.HeldOutPixels), int8.EncodeImage(demo.HeldOutPixels)),
                     ($"{prompts.Count} prompts", fp32.EncodeText(ids), int8.EncodeText(ids)),
                 })
        {
            var cos = Int8QuantizationTests.Cosines(a, b);
            output.WriteLine($"{what}: cosine(int8, fp32) min {cos.Min():F6}, mean {cos.Average():F6}");
            Assert.All(cos, c => Assert.True(c >= 0.99, $"{what}: cosine {c}"));
        }
    }
}
