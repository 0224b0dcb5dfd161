#include <nats/nats.h>
#include <stdio.h>
int main(int argc, char **argv) {
  const char *url = argv[1]; natsOptions *o; natsConnection *nc = NULL;
  natsOptions_Create(&o); natsOptions_SetServers(o, &url, 1); natsOptions_SetUserInfo(o, "u", "p");
  natsStatus s = natsConnection_Connect(&nc, o);
  printf("connect %s: %s %s\n", url, natsStatus_GetText(s), nats_GetLastError(NULL));
  natsConnection_Destroy(nc); natsOptions_Destroy(o); nats_Close(); return 0; }
