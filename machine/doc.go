// Package machine is the emulated x86-64 computer kemu runs kernel modules on: a Unicorn CPU in long
// mode, the kernel image of a profile laid out at its System.map addresses, and the kernel itself
// emulated in Go around the module's code.
//
// Memory is the mmu package's: RAM, frames and 4-level page tables are the source of truth, and the
// Machine is their mmu.Mirror onto Unicorn (which cannot walk guest page tables itself). kmalloc and
// kmem_cache come from the slab package, stacks, vmalloc() and module memory from the vmalloc package.
//
// How module code meets the emulated kernel:
//
//   - Every kernel symbol sits at its System.map address. Data objects are backed by zeroed memory
//     (initialised where modules depend on a value: jiffies, page_offset_base, __per_cpu_offset, ...).
//   - Kernel text is mapped readable but not executable, so a call from a module into the kernel ends
//     the Unicorn run with a fetch fault at the callee's address. The machine looks up the handler for
//     that symbol, runs it in Go with the System V arguments, stores the result in rax, pops the return
//     address and resumes. A few very hot symbols (__fentry__, __x86_return_thunk and the retpoline
//     thunks) get real instructions on an executable page instead, because a trap costs microseconds.
//   - Faults in module code (unmapped or protected memory, a non-canonical address, the stack guard
//     page, ud2 from BUG/WARN, a runaway loop the watchdog stops) become reports in the Linux 6.1
//     format in the kernel log, with call traces unwound through the modules' ORC tables; the task
//     dies, the machine taints itself and goes on, as the kernel does. __ex_table fixups apply.
//   - Tasks: the host's (insmod, the user process) and the modules' kernel threads share the one CPU
//     cooperatively (sched.go, kthread.go): a task runs until it sleeps or blocks, then the next
//     runnable one runs; when none is, the idle task runs queued work and moves time to the next
//     timer or wake-up. A thread left running by an unloaded module oopses when it next runs.
//   - Time is virtual (jiffies, ktime, dmesg stamps) and deterministic in what the guest sees: it
//     moves when tasks sleep, on delays and clock reads (1 µs each), and by one jiffy per timer tick
//     of code that spins without calling the kernel (sched_time.go: the ticks are paced by host
//     time, so a spin's iteration count is not reproducible, its end in virtual time is).
//
// No guest input may panic the host: guest memory is only touched through checked accessors that
// return *Fault, bulk operations run in bounded chunks, and handler panics are recovered at the
// dispatch boundary (dispatch.go) and reported as errors.
//
// Where things are: cpu.go (Machine, Options, the mmu.Mirror over Unicorn), run.go (Call, the run
// loop, the watchdog), dispatch.go (handler registry, Trap, call records), image.go and hot.go (the
// kernel image, the thunk pages), percpu.go (GS, current task, stack), insmod.go and patch.go
// (loading, load-time text patching, unloading), oops.go, bug.go, orc.go, locate.go (crash reports),
// timers.go (timers, work, Idle), sched.go, sched_wait.go, sched_time.go and kthread.go (tasks,
// sleeping and waking, time that moves, kernel threads), log.go (printk over the printk package), guestmem.go (checked
// guest memory), handlers_*.go (the emulated kernel API, by subject).
package machine
