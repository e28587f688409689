using System.Runtime.InteropServices;
using Cloud.Unum.USearch;

namespace ClipGen.Indexing;

/// <summary>
/// The calls of USearch's C library (<c>libusearch_c</c>, shipped in the Cloud.Unum.USearch package) that
/// <see cref="HnswVectorIndex"/> needs. The package's own wrapper copies every vector into a new array and cannot change
/// the search expansion of a loaded index, so these bind the same library directly, with spans.
/// </summary>
static unsafe partial class USearchNative
{
    const string Library = "libusearch_c";

    /// <summary><c>usearch_init_options_t</c>, blittable (C's <c>bool</c> as a byte).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct InitOptions
    {
        public MetricKind MetricKind;
        public nint Metric;
        public ScalarKind Quantization;
        public nuint Dimensions;
        public nuint Connectivity;
        public nuint ExpansionAdd;
        public nuint ExpansionSearch;
        public byte Multi;
    }

    [LibraryImport(Library)] public static partial nint usearch_init(InitOptions* options, out nint error);
    [LibraryImport(Library)] public static partial void usearch_free(nint index, out nint error);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)] public static partial void usearch_save(nint index, string path, out nint error);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)] public static partial void usearch_load(nint index, string path, out nint error);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)] public static partial void usearch_view(nint index, string path, out nint error);
    [LibraryImport(Library)] public static partial nuint usearch_size(nint index, out nint error);
    [LibraryImport(Library)] public static partial nuint usearch_dimensions(nint index, out nint error);
    [LibraryImport(Library)] public static partial nuint usearch_connectivity(nint index, out nint error);
    [LibraryImport(Library)] public static partial nuint usearch_expansion_add(nint index, out nint error);
    [LibraryImport(Library)] public static partial nuint usearch_expansion_search(nint index, out nint error);
    [LibraryImport(Library)] public static partial nuint usearch_memory_usage(nint index, out nint error);
    [LibraryImport(Library)] public static partial nuint usearch_serialized_length(nint index, out nint error);
    [LibraryImport(Library)] public static partial void usearch_reserve(nint index, nuint capacity, out nint error);
    [LibraryImport(Library)] public static partial void usearch_change_expansion_search(nint index, nuint expansion, out nint error);
    [LibraryImport(Library)] public static partial void usearch_change_threads_add(nint index, nuint threads, out nint error);
    [LibraryImport(Library)] public static partial void usearch_change_threads_search(nint index, nuint threads, out nint error);
    [LibraryImport(Library)] public static partial void usearch_add(nint index, ulong key, void* vector, ScalarKind kind, out nint error);
    [LibraryImport(Library)] public static partial nuint usearch_remove(nint index, ulong key, out nint error);
    [LibraryImport(Library)] [return: MarshalAs(UnmanagedType.I1)] public static partial bool usearch_contains(nint index, ulong key, out nint error);
    [LibraryImport(Library)] public static partial nuint usearch_search(nint index, void* query, ScalarKind kind, nuint count, ulong* keys, float* distances, out nint error);
    [LibraryImport(Library)] public static partial nuint usearch_get(nint index, ulong key, nuint count, void* vector, ScalarKind kind, out nint error);

    /// <summary>Throws when a call reported an error (the message is a static string owned by the library).</summary>
    public static void Check(nint error, string what)
    {
        if (error != 0) throw new ClipGenException($"{what}: {Marshal.PtrToStringUTF8(error)}");
    }
}
