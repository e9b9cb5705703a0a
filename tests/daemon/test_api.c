/* test_api.c - the API in-process on port 0 (libmicrohttpd's testcurl
 * style): the limits it runs with are read back and enforced (H2),
 * /readyz follows lr_api_set_ready, and quiesce stops accepting. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "api/api.h"
#include "model/lr.h"
#include "storage/store.h"
#include "tests/unit/tap.h"

#define WAIT_S 30 /* longest wait for a state, seconds */

static int port;

/* Waits (at most WAIT_S) until the server holds `want` connections;
 * returns 1 when it does. */
static int wait_connections(const lr_api *a, unsigned want)
{
	double t0 = lr_now();

	while (lr_api_connections(a) != want) {
		if (lr_now() - t0 > WAIT_S)
			return 0;
		usleep(10000);
	}
	return 1;
}

static int connect_local(void)
{
	struct sockaddr_in sa;
	struct timeval tv = { WAIT_S, 0 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Sends a GET and returns the status code, or -1. */
static int get(const char *path)
{
	char req[256], resp[512];
	int fd = connect_local(), status = -1;
	ssize_t n;

	if (fd < 0)
		return -1;
	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
	if (write(fd, req, strlen(req)) == (ssize_t)strlen(req) &&
	    (n = read(fd, resp, sizeof(resp) - 1)) > 12) {
		resp[n] = '\0';
		sscanf(resp, "HTTP/1.1 %d", &status);
	}
	close(fd);
	return status;
}

int main(void)
{
	char dir[] = "/tmp/lrapiXXXXXX";
	struct sockaddr_in sa;
	lr_api_opts o;
	lr_api_limits lim;
	lr_api *a = NULL;
	lr_store *st = NULL;
	lr_msg msg = { { 0 } };
	int idle[3], extra, rc;

	if (mkdtemp(dir) == NULL || lr_store_open(dir, &st, &msg) != 0) {
		printf("Bail out! cannot create a store: %s\n", msg.text);
		return 1;
	}
	st = lr_store_close(st);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	memset(&o, 0, sizeof(o));
	o.listen = "127.0.0.1:0";
	o.addr = &sa;
	o.state_dir = dir;
	o.max_upload_bytes = 1 << 20;
	o.max_concurrent_uploads = 2;
	o.max_queued_per_tenant = 4;
	o.max_attempts = 3;
	o.http_threads = 2;
	o.connection_limit = 16;
	o.per_ip_connection_limit = 3;
	o.connection_timeout_seconds = 11;
	rc = lr_api_start(&o, &a, &msg);
	tap_ok(rc == 0, "the API starts on port 0 (%s)", msg.text);
	if (rc != 0)
		return tap_done();
	port = lr_api_port(a);
	tap_ok(port > 0, "the bound port is read back (%d)", port);
	lr_api_get_limits(a, &lim);
	tap_ok(lim.epoll == 1 && lim.http_threads == 2, "epoll thread pool of 2");
	tap_ok(lim.connection_limit == 16 && lim.per_ip_connection_limit == 3 &&
	       lim.connection_timeout_seconds == 11, "limits read back: 16 total, 3 per address, 11 s idle");
	tap_ok(get("/livez") == 200, "/livez answers 200");
	tap_ok(get("/readyz") == 503, "/readyz is 503 until the daemon says ready");
	lr_api_set_ready(a, 1);
	tap_ok(get("/readyz") == 200, "... and 200 after");
	tap_ok(get("/v1/jobs") == 200, "no tokens: requests run as the local tenant");

	/* The per-address limit is enforced: of 4 connections from one
	 * address at once, one is dropped. The server closes earlier
	 * connections asynchronously, so wait until it holds none; then wait
	 * until it has closed one of the 4 and holds the other 3 (its two
	 * threads may accept them in any order), and only then send requests,
	 * so a request served and closed cannot make room for the 4th. */
	tap_ok(wait_connections(a, 0), "the earlier connections are all closed (%u open)",
	       lr_api_connections(a));
	for (int i = 0; i < 3; i++)
		idle[i] = connect_local();
	extra = connect_local();
	{
		int served = 0, dropped = 0, closed = 0;
		int fds[4] = { idle[0], idle[1], idle[2], extra };
		struct pollfd pfd[4];
		const char *rq = "GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

		for (int i = 0; i < 4; i++) {
			pfd[i].fd = fds[i];
			pfd[i].events = POLLIN | POLLRDHUP;
			pfd[i].revents = 0;
		}
		if (poll(pfd, 4, WAIT_S * 1000) > 0)
			for (int i = 0; i < 4; i++)
				closed += pfd[i].revents != 0;
		tap_ok(closed == 1 && wait_connections(a, 3),
		       "of 4 connections from one address the server closes one at once (%d) and keeps 3 (%u)",
		       closed, lr_api_connections(a));

		for (int i = 0; i < 4; i++) {
			char resp[64];
			ssize_t n = -1;

			if (fds[i] >= 0 && write(fds[i], rq, strlen(rq)) == (ssize_t)strlen(rq))
				n = read(fds[i], resp, sizeof(resp));
			if (n > 12 && memcmp(resp, "HTTP/1.1 200", 12) == 0)
				served++;
			else
				dropped++;
		}
		tap_ok(served == 3 && dropped == 1,
		       "a 4th connection from one address is closed (per-address limit 3): %d served, %d dropped",
		       served, dropped);
	}
	for (int i = 0; i < 3; i++)
		if (idle[i] >= 0)
			close(idle[i]);
	if (extra >= 0)
		close(extra);
	tap_ok(wait_connections(a, 0) && get("/livez") == 200,
	       "after they close, the address is served again");

	lr_api_quiesce(a);
	tap_ok(connect_local() < 0, "after quiesce no connection is accepted");
	lr_api_stop(a);
	{
		char cmd[64];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		rc = system(cmd);
		(void)rc;
	}
	return tap_done();
}
