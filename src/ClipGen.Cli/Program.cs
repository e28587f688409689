using ClipGen.Cli;

// The process is clipgen's own: glibc keeps freed tensor memory between forwards (NativeHeap; CLIPGEN_MALLOC_RETAIN=0 turns it off).
ClipGen.NativeHeap.RetainFreedMemory();
return CliHost.Run(args, Console.Out, Console.Error);
