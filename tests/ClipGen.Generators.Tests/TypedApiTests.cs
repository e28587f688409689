using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Xunit;

namespace ClipGen.Generators.Tests;

/// <summary>Per-model types make the compiler reject values of one model passed to another.</summary>
public class TypedApiTests
{
    const string Usings = "using ClipGen.Modeling;\nusing TestApp.Models;\n";

    static List<Diagnostic> CompileErrors(string userCode)
    {
        var compilation = GeneratorHarness.CreateCompilation(Usings + userCode);
        var driver = GeneratorHarness.CreateDriver(GeneratorHarness.Texts(("/specs/a.yaml", TinySpecs.Vit), ("/specs/b.yaml", TinySpecs.ResNet)));
        driver.RunGeneratorsAndUpdateCompilation(compilation, out var output, out var generatorDiagnostics);
        Assert.Empty(generatorDiagnostics);
        return output.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
    }

    [Fact]
    public void Correct_use_compiles()
    {
        const string code = """
            public static class Use
            {
                public static ImageEmbeddings<TinyB> Image(TinyB model, Pixels<TinyB> pixels) => model.EncodeImage(pixels);
                public static TextEmbeddings<TinyA> Text(TinyA model, TokenIds<TinyA> tokens) => model.EncodeText(tokens);
                public static TorchSharp.torch.Tensor Similarity(ImageEmbeddings<TinyA> image, TextEmbeddings<TinyA> text) => image.CosineSimilarity(text);
                public const int Size = TinyA.ImageSize + TinyB.ImageSize + TinyA.ContextLength + TinyB.EmbedDim; // compile-time constants
                public static int Generic<TModel>() where TModel : ClipModule, IClipModel<TModel> => TModel.InputImageSize;
                public static int Both => Generic<TinyA>() + Generic<TinyB>();
            }
            """;
        var errors = CompileErrors(code);
        Assert.True(errors.Count == 0, GeneratorHarness.Format(errors));
    }

    [Fact]
    public void Pixels_of_one_model_are_rejected_by_another()
    {
        const string code = """
            public static class Misuse
            {
                public static void Run(TinyB model, Pixels<TinyA> pixels)
                {
                    using var e = model.EncodeImage(pixels);
                }
            }
            """;
        var error = Assert.Single(CompileErrors(code));
        Assert.Equal("CS1503", error.Id);
        Assert.Contains("Pixels<TestApp.Models.TinyA>", error.GetMessage());
        Assert.Equal(7, error.Location.GetLineSpan().StartLinePosition.Line + 1); // 2 using lines + 5
    }

    [Fact]
    public void Embeddings_of_two_models_cannot_be_compared()
    {
        const string code = """
            public static class Misuse
            {
                public static TorchSharp.torch.Tensor Compare(ImageEmbeddings<TinyA> image, TextEmbeddings<TinyB> text) => image.CosineSimilarity(text);
            }
            """;
        var error = Assert.Single(CompileErrors(code));
        Assert.Equal("CS1503", error.Id);
        Assert.Contains("TextEmbeddings<TestApp.Models.TinyB>", error.GetMessage());
        Assert.Contains("TextEmbeddings<TestApp.Models.TinyA>", error.GetMessage());
    }

    [Fact]
    public void Tokens_of_one_model_are_rejected_by_another()
    {
        const string code = """
            public static class Misuse
            {
                public static TextEmbeddings<TinyA> Run(TinyA model, TokenIds<TinyB> tokens) => model.EncodeText(tokens);
            }
            """;
        var error = Assert.Single(CompileErrors(code));
        Assert.Equal("CS1503", error.Id);
    }
}
