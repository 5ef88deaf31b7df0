// Apollo Client's HttpLink running a subscription over multipart HTTP: it
// must read our Content-Type (boundary included) to see any event.
// Usage: node multipart.mjs <http url>; prints the first event's data.
import { ApolloClient, HttpLink, InMemoryCache, gql } from '@apollo/client';

const [url] = process.argv.slice(2);
const client = new ApolloClient({ cache: new InMemoryCache(), link: new HttpLink({ uri: url }) });
const { data } = await client.query({ query: gql`{ todoList { cursor } }`, fetchPolicy: 'network-only' });
const CHANGES = gql`subscription($after: String) { todoChanges(after: $after) { op todo { title } } }`;
const first = new Promise((resolve, reject) => {
  const subscription = client.subscribe({ query: CHANGES, variables: { after: data.todoList.cursor } }).subscribe({
    next: (result) => {
      subscription.unsubscribe();
      resolve(result);
    },
    error: reject,
  });
});
await client.mutate({ mutation: gql`mutation { createTodo(input: { title: "over multipart" }) { id } }` });
console.log(JSON.stringify((await first).data));
