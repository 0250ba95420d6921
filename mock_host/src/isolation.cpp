#include <atb/mock_host/isolation.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>

namespace atb::mock_host {

CheckResult run_isolated(const std::string& check, const std::function<CheckResult()>& body) {
  int fds[2];
  if (pipe(fds) != 0) return {check, false, std::string("pipe failed: ") + std::strerror(errno)};
  const pid_t child = fork();
  if (child < 0) return {check, false, std::string("fork failed: ") + std::strerror(errno)};
  if (child == 0) {
    close(fds[0]);
    CheckResult result;
    try {
      result = body();
    } catch (const std::exception& thrown) {
      result = {check, false, std::string("an exception reached the host: ") + thrown.what()};
    } catch (...) {
      result = {check, false, "an exception of unknown type reached the host"};
    }
    const std::string payload = std::string(result.passed ? "1" : "0") + result.message;
    size_t written = 0;
    while (written < payload.size()) {
      const ssize_t n = write(fds[1], payload.data() + written, payload.size() - written);
      if (n <= 0) break;
      written += size_t(n);
    }
    close(fds[1]);
    _exit(0);  // no destructors or atexit handlers of the parent's state in the child
  }
  close(fds[1]);
  std::string payload;
  char buffer[4096];
  for (ssize_t n; (n = read(fds[0], buffer, sizeof buffer)) > 0;) payload.append(buffer, size_t(n));
  close(fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  if (WIFSIGNALED(status))
    return {check, false,
            "the check's process died of signal " + std::to_string(WTERMSIG(status)) + " (" +
                strsignal(WTERMSIG(status)) + "): an abort or crash escaped the plugin"};
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || payload.empty())
    return {check, false,
            "the check's process exited with status " + std::to_string(WEXITSTATUS(status)) +
                " before reporting: the plugin called exit()"};
  return {check, payload[0] == '1', payload.substr(1)};
}

}  // namespace atb::mock_host
