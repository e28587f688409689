using ClipGen.Applications;
using ClipGen.Backends;
using ClipGen.Hosting;
using ClipGen.Modeling;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Xunit;
using static TorchSharp.torch;

namespace ClipGen.Tests.Applications;

/// <summary>
/// <c>services.AddClipGen(…)</c>: options bound from configuration, the pipeline and the Microsoft.Extensions.AI generators
/// resolved from the container give the reference numbers (tolerance as TestUtil.AssertClose: 1e-4·max(1, max|ref|)); the
/// library's notes reach an <see cref="ILogger"/>; the async overloads equal the synchronous ones and honour cancellation.
/// </summary>
public class HostingTests
{
    static IConfiguration Config(params (string Key, string Value)[] values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>("ClipGen:" + v.Key, v.Value))).Build().GetSection("ClipGen");

    [Fact]
    public async Task Configuration_bound_registration_gives_the_reference_text_features_through_the_abstraction()
    {
        var services = new ServiceCollection();
        services.AddClipGen(Config(("Model", "tiny-vit"), ("Weights", AppFixtures.Weights("openai/tiny-vit")), ("Vocabulary", AppFixtures.Vocab), ("BatchSize", "2")));
        using var provider = services.BuildServiceProvider();
        var generator = provider.GetRequiredService<IEmbeddingGenerator<string, Embedding<float>>>();
        var captions = AppFixtures.Captions("openai/tiny-vit");
        var embeddings = await generator.GenerateAsync(captions);

        using var outputs = TestUtil.Read(Fixtures.Path_("reference", "openai", "tiny-vit", "outputs.safetensors"));
        using var expected = ClipPipeline.Normalize(outputs.Tensors["text_features"]);
        using var actual = stack(embeddings.Select(e => tensor(e.Vector.ToArray())).ToArray());
        TestUtil.AssertClose(expected, actual, "text embeddings from the container");

        var pipeline = provider.GetRequiredService<ClipPipeline>();
        Assert.Same(pipeline, provider.GetRequiredService<IEmbeddingGenerator<DataContent, Embedding<float>>>().GetService<ClipPipeline>());
        Assert.Equal(BackendKind.Torch, pipeline.Backend.Kind);
        Assert.Equal(2, pipeline.BatchSize);
    }

    [Fact]
    public async Task An_onnx_export_folder_runs_on_onnx_runtime_with_the_same_image_embeddings()
    {
        var dir = Directory.CreateTempSubdirectory("clipgen-di-").FullName;
        try
        {
            using (var model = ClipModelFactory.Load("tiny-vit", AppFixtures.Weights("openai/tiny-vit")))
                ((Models.TinyVit)model).ExportOnnx(dir);
            var services = new ServiceCollection();
            services.AddClipGen(o => { o.Weights = dir; o.Vocabulary = AppFixtures.Vocab; });
            using var provider = services.BuildServiceProvider();
            var pipeline = provider.GetRequiredService<ClipPipeline>();
            Assert.Equal(BackendKind.Onnx, pipeline.Backend.Kind);

            using var reference = AppFixtures.Pipeline("openai/tiny-vit");
            var images = AppFixtures.Images;
            var a = (await pipeline.EmbedImagesAsync(images)).Data;
            var b = reference.EmbedImages(images).Data;
            Assert.Equal(b.Length, a.Length);
            for (int i = 0; i < a.Length; i++) Assert.True(Math.Abs(a[i] - b[i]) < 1e-5, $"value {i}: {a[i]} vs {b[i]}");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Incomplete_options_are_refused_with_what_is_missing()
    {
        var services = new ServiceCollection();
        services.AddClipGen(o => o.Model = "tiny-vit");
        using var provider = services.BuildServiceProvider();
        var e = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<ClipPipeline>());
        Assert.Contains("needs Weights", e.Message);

        var pretrainedOnly = new ServiceCollection().AddClipGen(o => o.Pretrained = "openai").BuildServiceProvider();
        Assert.Contains("needs a Model", Assert.Throws<OptionsValidationException>(() => pretrainedOnly.GetRequiredService<ClipPipeline>()).Message);
    }

    [Fact]
    public void Loading_notes_reach_the_logger()
    {
        // The fixture's safetensors file records no activation: loading states the assumption, at Information.
        var logger = new ListLogger();
        using var pipeline = ClipPipeline.Load("tiny-vit", AppFixtures.Weights("openai/tiny-vit"), AppFixtures.Vocab, BackendKind.Torch, logger);
        Assert.Contains(logger.Entries, e => e.Level == LogLevel.Information && e.Message.Contains("do not record their activation", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Async_embed_and_classify_equal_the_synchronous_calls_and_honour_cancellation()
    {
        using var pipeline = AppFixtures.Pipeline("openai/tiny-vit");
        pipeline.BatchSize = 2;
        var images = AppFixtures.Images;
        var captions = AppFixtures.Captions("openai/tiny-vit");
        Assert.Equal(pipeline.EmbedImages(images).Data, (await pipeline.EmbedImagesAsync(images)).Data);
        Assert.Equal(pipeline.EmbedTexts(captions).Data, (await pipeline.EmbedTextsAsync(captions)).Data);
        using var classifier = pipeline.CreateClassifier(["a coffee mug", "a horse", "a diagram"]);
        var sync = classifier.Classify(images);
        var async_ = await classifier.ClassifyAsync(images);
        Assert.Equal(sync.Select(r => r.Probabilities.ToArray()), async_.Select(r => r.Probabilities.ToArray()));

        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pipeline.EmbedImagesAsync(images, cancelled.Token));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pipeline.EmbedTextsAsync(captions, cancelled.Token));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => classifier.ClassifyAsync(images, cancelled.Token));
    }
}
