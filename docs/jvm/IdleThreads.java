// An outside check for docs/worker-threads.md, not part of flowbench: what idle JVM
// threads add to a HotSpot process's VmRSS and VmSize.
//
//   java docs/jvm/IdleThreads.java 8
//   java docs/jvm/IdleThreads.java 128
//
// It starts N platform threads that block on a latch, as idle pool threads block on
// their queue, waits until all are parked, then prints /proc/self/status's VmRSS and
// VmSize before and after, and the difference per thread.
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;

public class IdleThreads {
    static long kib(String field) throws Exception {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith(field + ":")) {
                return Long.parseLong(line.replaceAll("[^0-9]", ""));
            }
        }
        throw new IllegalStateException("no " + field);
    }

    public static void main(String[] args) throws Exception {
        int n = Integer.parseInt(args[0]);
        System.gc();
        Thread.sleep(500);
        long rss0 = kib("VmRSS"), vsz0 = kib("VmSize");
        CountDownLatch started = new CountDownLatch(n);
        CountDownLatch stop = new CountDownLatch(1);
        for (int i = 0; i < n; i++) {
            Thread t = new Thread(() -> {
                started.countDown();
                try { stop.await(); } catch (InterruptedException e) { }
            }, "worker-" + i);
            t.start();
        }
        started.await();
        Thread.sleep(500);
        long rss1 = kib("VmRSS"), vsz1 = kib("VmSize");
        System.out.printf("threads=%d VmRSS +%d KiB (%.1f KiB/thread) VmSize +%d KiB (%.1f KiB/thread)%n",
            n, rss1 - rss0, (rss1 - rss0) / (double) n, vsz1 - vsz0, (vsz1 - vsz0) / (double) n);
        stop.countDown();
    }
}
