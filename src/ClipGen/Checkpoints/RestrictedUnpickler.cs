using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace ClipGen.Checkpoints;

/// <summary>
/// A pickle reader that builds plain data and never calls anything, in the spirit of <c>torch.load(weights_only=True)</c>.
/// It understands the opcodes a state dict or a TorchScript <c>data.pkl</c> needs and resolves only the globals in
/// <see cref="IsAllowed"/>; any other global (e.g. <c>posix.system</c>) stops the read with a <see cref="ClipGenException"/>
/// before anything else happens. Tensors come back as <see cref="PickledTensor"/> descriptions, never as data.
/// </summary>
internal sealed class RestrictedUnpickler
{
    /// <summary>A resolved, allowed global (a class or function reference; never called).</summary>
    internal sealed record PyGlobal(string Module, string Name)
    {
        public override string ToString() => Module + "." + Name;
    }

    /// <summary>A dict (or OrderedDict), in insertion order.</summary>
    internal sealed class PyDict
    {
        readonly Dictionary<object, int> _index = [];

        public List<KeyValuePair<object?, object?>> Items { get; } = [];

        public void Set(object? key, object? value)
        {
            if (key is not null && _index.TryGetValue(key, out int i)) { Items[i] = new(key, value); return; }
            if (key is not null) _index[key] = Items.Count;
            Items.Add(new(key, value));
        }

        public bool TryGet(string key, out object? value)
        {
            if (_index.TryGetValue(key, out int i)) { value = Items[i].Value; return true; }
            value = null;
            return false;
        }
    }

    /// <summary>An instance of a TorchScript class (<c>__torch__.…</c>): just its attributes.</summary>
    internal sealed class ScriptObject(PyGlobal type)
    {
        public PyGlobal Type { get; } = type;
        public PyDict Attributes { get; set; } = new();
    }

    /// <summary>A storage: the zip entry <c>data/&lt;Key&gt;</c> holding <see cref="ElementCount"/> elements.</summary>
    internal sealed record PickledStorage(TensorDType DType, string Key, string Location, long ElementCount);

    /// <summary>A tensor view of a storage (<c>_rebuild_tensor_v2</c> arguments).</summary>
    internal sealed record PickledTensor(PickledStorage Storage, long StorageOffset, long[] Size, long[] Stride);

    static readonly HashSet<string> AllowedTorchFunctions =
    [
        "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state",
        "collections.OrderedDict",
    ];

    static readonly HashSet<string> AllowedTorchScriptHelpers =
    [
        "torch.jit._pickle.build_intlist",
        "torch.jit._pickle.build_doublelist",
        "torch.jit._pickle.build_boollist",
        "torch.jit._pickle.build_tensorlist",
        "torch.jit._pickle.build_genericlist",
        "torch.jit._pickle.restore_type_tag",
    ];

    readonly byte[] _data;
    readonly string _file;
    readonly bool _torchScript;
    int _pos;
    readonly List<object?> _stack = [];
    readonly Stack<int> _marks = new();
    readonly Dictionary<long, object?> _memo = [];
    readonly long _maxObjects;
    long _objects;

    RestrictedUnpickler(byte[] data, string file, bool torchScript, long maxObjects)
    {
        _data = data;
        _file = file;
        _torchScript = torchScript;
        _maxObjects = maxObjects;
    }

    /// <summary>
    /// Reads one pickle. <paramref name="torchScript"/> also admits <c>__torch__.*</c> classes as attribute bags. The pickle may create
    /// at most the number of objects <see cref="CheckpointLimits.PickleObjectBudget"/> allows for its size (memo entries count too).
    /// </summary>
    public static object? Load(byte[] data, string file, bool torchScript, CheckpointLimits? limits = null) =>
        Load(data, file, torchScript, out _, limits);

    /// <summary>As <see cref="Load(byte[], string, bool, CheckpointLimits?)"/>, also saying how many objects the pickle created.</summary>
    public static object? Load(byte[] data, string file, bool torchScript, out long objects, CheckpointLimits? limits = null)
    {
        var u = new RestrictedUnpickler(data, file, torchScript, (limits ?? CheckpointLimits.Default).PickleObjectBudget(data.Length));
        var root = u.Run();
        objects = u._objects;
        return root;
    }

    /// <summary>The globals a checkpoint may name. Everything else is refused.</summary>
    internal static bool IsAllowed(string module, string name, bool torchScript)
    {
        var full = module + "." + name;
        if (AllowedTorchFunctions.Contains(full)) return true;
        if (module == "torch" && TensorDTypes.TryParseTorchStorage(name, out _)) return true;
        if (torchScript && (module == "__torch__" || module.StartsWith("__torch__.", StringComparison.Ordinal))) return true;
        if (torchScript && AllowedTorchScriptHelpers.Contains(full)) return true;
        return false;
    }

    object? Run()
    {
        while (true)
        {
            if (_pos >= _data.Length) throw Fail("the pickle ends without STOP");
            int at = _pos;
            byte op = _data[_pos++];
            switch (op)
            {
                case 0x80: _pos++; break; // PROTO n
                case 0x95: Take(8); break; // FRAME (length; the data follows inline)
                case (byte)'.': // STOP
                    if (_stack.Count != 1) throw Fail("malformed pickle: STOP with a stack of " + _stack.Count);
                    return _stack[0];
                case (byte)'(': _marks.Push(_stack.Count); break; // MARK
                case (byte)'0': Pop(); break; // POP
                case (byte)'1': PopMark(); break; // POP_MARK
                case (byte)'2': PushExisting(Peek()); break; // DUP
                case (byte)'N': Push(null); break;
                case 0x88: Push(true); break; // NEWTRUE
                case 0x89: Push(false); break; // NEWFALSE
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Take(4))); break; // BININT
                case (byte)'K': Push((long)Take(1)[0]); break; // BININT1
                case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Take(2))); break; // BININT2
                case 0x8a: // LONG1
                {
                    int n = Take(1)[0];
                    var big = new BigInteger(Take(n), isUnsigned: false, isBigEndian: false);
                    Push(big >= long.MinValue && big <= long.MaxValue ? (long)big : big);
                    break;
                }
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(Take(8))); break; // BINFLOAT
                case (byte)'X': Push(Utf8(Take(Length32()))); break; // BINUNICODE
                case 0x8c: Push(Utf8(Take(Take(1)[0]))); break; // SHORT_BINUNICODE
                case 0x8d: Push(Utf8(Take(Length64()))); break; // BINUNICODE8
                case (byte)'T': Push(Encoding.Latin1.GetString(Take(Length32()))); break; // BINSTRING
                case (byte)'U': Push(Encoding.Latin1.GetString(Take(Take(1)[0]))); break; // SHORT_BINSTRING
                case (byte)'B': Push(Take(Length32()).ToArray()); break; // BINBYTES
                case (byte)'C': Push(Take(Take(1)[0]).ToArray()); break; // SHORT_BINBYTES
                case (byte)')': Push(Array.Empty<object?>()); break; // EMPTY_TUPLE
                case (byte)'t': Push(PopMark().ToArray()); break; // TUPLE
                case 0x85: { var a = Pop(); Push(new[] { a }); break; } // TUPLE1
                case 0x86: { var b = Pop(); var a = Pop(); Push(new[] { a, b }); break; } // TUPLE2
                case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); Push(new[] { a, b, c }); break; } // TUPLE3
                case (byte)']': Push(new List<object?>()); break; // EMPTY_LIST
                case (byte)'l': Push(PopMark()); break; // LIST
                case (byte)'a': { var v = Pop(); AsList(Peek()).Add(v); break; } // APPEND
                case (byte)'e': { var items = PopMark(); AsList(Peek()).AddRange(items); break; } // APPENDS
                case (byte)'}': Push(new PyDict()); break; // EMPTY_DICT
                case (byte)'d': // DICT
                {
                    var items = PopMark();
                    var dict = new PyDict();
                    for (int i = 0; i + 1 < items.Count; i += 2) dict.Set(items[i], items[i + 1]);
                    Push(dict);
                    break;
                }
                case (byte)'s': { var v = Pop(); var k = Pop(); AsDict(Peek()).Set(k, v); break; } // SETITEM
                case (byte)'u': // SETITEMS
                {
                    var items = PopMark();
                    if (items.Count % 2 != 0) throw Fail("malformed pickle: SETITEMS with an odd number of items");
                    var dict = AsDict(Peek());
                    for (int i = 0; i < items.Count; i += 2) dict.Set(items[i], items[i + 1]);
                    break;
                }
                case (byte)'c': // GLOBAL "module\nname\n"
                {
                    var module = ReadLine();
                    var name = ReadLine();
                    Push(Resolve(module, name));
                    break;
                }
                case 0x93: // STACK_GLOBAL
                {
                    var name = Pop() as string ?? throw Fail("malformed pickle: STACK_GLOBAL needs strings");
                    var module = Pop() as string ?? throw Fail("malformed pickle: STACK_GLOBAL needs strings");
                    Push(Resolve(module, name));
                    break;
                }
                case (byte)'R': { var args = Pop(); var callable = Pop(); Push(Reduce(callable, args)); break; } // REDUCE
                case 0x81: { var args = Pop(); var cls = Pop(); Push(NewObject(cls, args)); break; } // NEWOBJ
                case (byte)'b': { var state = Pop(); Build(Peek(), state); break; } // BUILD
                case (byte)'Q': Push(PersistentLoad(Pop())); break; // BINPERSID
                case (byte)'h': PushExisting(Get(Take(1)[0])); break; // BINGET
                case (byte)'j': PushExisting(Get(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))); break; // LONG_BINGET
                case (byte)'q': Memo(Take(1)[0]); break; // BINPUT
                case (byte)'r': Memo(BinaryPrimitives.ReadUInt32LittleEndian(Take(4))); break; // LONG_BINPUT
                case 0x94: Memo(_memo.Count); break; // MEMOIZE
                default:
                    throw Fail($"unsupported pickle opcode 0x{op:x2} at byte {at}");
            }
        }
    }

    PyGlobal Resolve(string module, string name)
    {
        if (!IsAllowed(module, name, _torchScript))
            throw new ClipGenException($"{_file}: refusing to unpickle global '{module}.{name}': checkpoints may only contain tensors (nothing was executed; for a whole pickled model, save its state_dict() instead)");
        return new PyGlobal(module, name);
    }

    object? Reduce(object? callable, object? args)
    {
        if (callable is not PyGlobal g) throw Fail("malformed pickle: REDUCE of something that is not a global");
        var a = args as object?[] ?? throw Fail($"malformed pickle: REDUCE of {g} without an argument tuple");
        switch (g.ToString())
        {
            case "collections.OrderedDict":
                return new PyDict();
            case "torch._utils._rebuild_tensor":
            case "torch._utils._rebuild_tensor_v2":
            {
                if (a.Length < 4 || a[0] is not PickledStorage storage || a[1] is not long offset)
                    throw Fail($"malformed {g.Name} call");
                return new PickledTensor(storage, offset, Longs(a[2], "size"), Longs(a[3], "stride"));
            }
            case "torch._utils._rebuild_parameter":
            case "torch._utils._rebuild_parameter_with_state":
                if (a.Length < 1 || a[0] is not PickledTensor t) throw Fail($"malformed {g.Name} call");
                return t;
            default:
                if (AllowedTorchScriptHelpers.Contains(g.ToString()))
                    return a.Length > 0 ? a[0] : null;
                throw Fail($"'{g}' cannot be called while unpickling");
        }
    }

    object NewObject(object? cls, object? args)
    {
        if (cls is PyGlobal g && _torchScript && g.Module.StartsWith("__torch__", StringComparison.Ordinal))
            return new ScriptObject(g);
        throw Fail($"NEWOBJ of '{cls}' is not supported");
    }

    void Build(object? target, object? state)
    {
        switch (target)
        {
            case ScriptObject o:
                o.Attributes = state as PyDict ?? throw Fail($"the state of a {o.Type.Name} object is not a dict");
                break;
            case PyDict or PickledTensor:
                break; // OrderedDict._metadata (module versions) or tensor attributes: not needed
            default:
                throw Fail($"BUILD of a {target?.GetType().Name ?? "None"} is not supported");
        }
    }

    object PersistentLoad(object? pid)
    {
        if (pid is not object?[] { Length: 5 } t || t[0] is not "storage")
            throw Fail("unsupported persistent id (expected ('storage', type, key, location, size))");
        if (t[1] is not PyGlobal { Module: "torch" } type || !TensorDTypes.TryParseTorchStorage(type.Name, out var dtype))
            throw Fail($"unsupported storage type '{t[1]}'");
        if (t[2] is not string key || t[3] is not string location || t[4] is not long count || count < 0)
            throw Fail("malformed storage persistent id");
        return new PickledStorage(dtype, key, location, count);
    }

    long[] Longs(object? value, string what)
    {
        var items = value switch
        {
            object?[] a => a,
            List<object?> l => l.ToArray(),
            _ => null,
        };
        if (items is null) throw Fail($"a tensor {what} is not a tuple of integers");
        var result = new long[items.Length];
        for (int i = 0; i < items.Length; i++)
            result[i] = items[i] is long n ? n : throw Fail($"a tensor {what} is not a tuple of integers");
        return result;
    }

    ReadOnlySpan<byte> Take(long n)
    {
        if (n < 0 || n > _data.Length - _pos) throw Fail("the pickle is truncated");
        var span = _data.AsSpan(_pos, (int)n);
        _pos += (int)n;
        return span;
    }

    long Length32() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4));

    long Length64()
    {
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(Take(8));
        return n > int.MaxValue ? -1 : (long)n;
    }

    string Utf8(ReadOnlySpan<byte> bytes)
    {
        try { return new UTF8Encoding(false, true).GetString(bytes); }
        catch (DecoderFallbackException) { throw Fail("a string in the pickle is not valid UTF-8"); }
    }

    string ReadLine()
    {
        int end = Array.IndexOf(_data, (byte)'\n', _pos);
        if (end < 0) throw Fail("the pickle is truncated");
        var s = Encoding.ASCII.GetString(_data, _pos, end - _pos);
        _pos = end + 1;
        return s;
    }

    object? Get(long index) => _memo.TryGetValue(index, out var v) ? v : throw Fail($"malformed pickle: memo {index} is not set");

    /// <summary>Pushes a newly created object, which counts against the budget.</summary>
    void Push(object? value)
    {
        Charge();
        _stack.Add(value);
    }

    /// <summary>Pushes another reference to an object that already exists (DUP, memo GET).</summary>
    void PushExisting(object? value) => _stack.Add(value);

    void Memo(long index)
    {
        var value = Peek();
        if (!_memo.ContainsKey(index)) Charge();
        _memo[index] = value;
    }

    void Charge()
    {
        if (++_objects > _maxObjects)
            throw new ClipGenException($"{_file}: the checkpoint's pickle creates more than {_maxObjects:N0} objects from {_data.Length:N0} bytes "
                + "(real checkpoints create one per 6 bytes or more; CheckpointLimits.PickleBytesPerObject or CLIPGEN_PICKLE_BYTES_PER_OBJECT raises the limit)");
    }

    object? Pop()
    {
        if (_stack.Count == 0 || (_marks.Count > 0 && _marks.Peek() >= _stack.Count)) throw Fail("malformed pickle: stack underflow");
        var v = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return v;
    }

    object? Peek()
    {
        if (_stack.Count == 0) throw Fail("malformed pickle: stack underflow");
        return _stack[^1];
    }

    List<object?> PopMark()
    {
        if (_marks.Count == 0) throw Fail("malformed pickle: no MARK");
        int start = _marks.Pop();
        var items = _stack.GetRange(start, _stack.Count - start);
        _stack.RemoveRange(start, _stack.Count - start);
        return items;
    }

    List<object?> AsList(object? o) => o as List<object?> ?? throw Fail("malformed pickle: APPEND to a non-list");

    PyDict AsDict(object? o) => o as PyDict ?? throw Fail("malformed pickle: SETITEM on a non-dict");

    ClipGenException Fail(string message) => new($"{_file}: cannot read the checkpoint's pickle: {message}");
}
