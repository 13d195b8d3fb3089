using System.Runtime.InteropServices;

namespace Engram.Server.Resp.EventLoop;

/// <summary>The Linux system calls the RESP event loop makes (libc), and their constants for x86-64.</summary>
internal static unsafe partial class EpollNative
{
    public const uint In = 0x001;
    public const uint Out = 0x004;
    public const uint Err = 0x008;
    public const uint Hup = 0x010;
    public const uint ReadHup = 0x2000;

    public const int CtlAdd = 1;
    public const int CtlDel = 2;
    public const int CtlMod = 3;

    public const int EAGAIN = 11;
    public const int EINTR = 4;

    public const int MsgNoSignal = 0x4000;
    public const int ShutReadWrite = 2;
    public const int CloseOnExec = 0x80000;
    public const int NonBlocking = 0x800;

    /// <summary>
    /// Linux's <c>struct epoll_event</c> as x86-64 lays it out: packed, the 64-bit data right after the 32-bit mask (12
    /// bytes). Other architectures pad it to 16, which is why <see cref="IsSupported"/> asks for x86-64.
    /// </summary>
    [StructLayout(LayoutKind.Sequential, Pack = 4)]
    public struct Event
    {
        public uint Events;
        public ulong Data;
    }

    /// <summary>Where the event loop runs: Linux on x86-64 (elsewhere the endpoint uses the runtime's sockets).</summary>
    public static bool IsSupported => OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64 && sizeof(Event) == 12;

    [LibraryImport("libc", EntryPoint = "epoll_create1", SetLastError = true)]
    public static partial int EpollCreate(int flags);

    [LibraryImport("libc", EntryPoint = "epoll_ctl", SetLastError = true)]
    public static partial int EpollControl(int epoll, int op, int fd, Event* change);

    [LibraryImport("libc", EntryPoint = "epoll_wait", SetLastError = true)]
    public static partial int EpollWait(int epoll, Event* events, int max, int timeoutMs);

    [LibraryImport("libc", EntryPoint = "recv", SetLastError = true)]
    public static partial nint Receive(int fd, byte* buffer, nint length, int flags);

    [LibraryImport("libc", EntryPoint = "send", SetLastError = true)]
    public static partial nint Send(int fd, byte* buffer, nint length, int flags);

    [LibraryImport("libc", EntryPoint = "shutdown", SetLastError = true)]
    public static partial int Shutdown(int fd, int how);

    [LibraryImport("libc", EntryPoint = "eventfd", SetLastError = true)]
    public static partial int EventFd(uint initial, int flags);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    public static partial nint Read(int fd, byte* buffer, nint length);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    public static partial nint Write(int fd, byte* buffer, nint length);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);
}
